// Search results: images found by words, packages (samtools>=1.19), labels and filters
// (GET /api/v1/search), with the facets of every match; a facet adds its filter to the query.
// Each result shows its trust marks (the badges of the image page) and, for package terms,
// the packages found in its matching versions: why it matched.
import { get, imagePath, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Link, navigate, useLocation } from "../lib/router.js";
import { MarkBadges } from "../components/marks.js";
import { Empty, ErrorNote, Spinner, useLoad } from "../components/ui.js";

const PAGE = 20;
const FACETS = [
  ["workspace", "Workspace"],
  ["source", "Source"],
  ["type", "Type"],
  ["platform", "Platform"],
];

const searchUrl = (q, offset = 0) => `/search${query({ q, offset: offset || undefined })}`;

function Facets({ q, facets }) {
  return html`<aside class="facets" aria-label="Narrow the results">
    ${FACETS.filter(([key]) => Object.keys(facets[key] || {}).length).map(
      ([key, label]) => html`<section key=${key}>
        <h2>${label}</h2>
        <ul>
          ${Object.entries(facets[key])
            .sort((a, b) => b[1] - a[1])
            .map(
              ([value, count]) => html`<li key=${value}>
                <${Link} href=${searchUrl(`${q} ${key}:${value}`)}>${value}</${Link}> <span class="muted">${count}</span>
              </li>`,
            )}
        </ul>
      </section>`,
    )}
  </aside>`;
}

function MatchedPackages({ packages }) {
  if (!packages || !packages.length) return null;
  return html`<div class="result-packages">
    <span class="muted">Matched</span>
    <ul aria-label="Matched packages">
      ${packages.map(
        (p) => html`<li key=${`${p.ecosystem} ${p.name} ${p.version}`}>${p.name} ${p.version} <span class="muted">(${p.ecosystem})</span></li>`,
      )}
    </ul>
  </div>`;
}

function Result({ item }) {
  const versions = item.versions.map((v) => v.version);
  return html`<li class="result">
    <div class="result-head">
      <h2><${Link} href=${`/images/${imagePath(item.name)}`}>${item.name}</${Link}></h2>
      <${MarkBadges} marks=${item.marks} />
    </div>
    ${item.description && html`<p>${item.description}</p>`}
    <${MatchedPackages} packages=${item.packages} />
    <p class="muted">
      ${item.visibility} · ${versions.length ? `versions ${versions.slice(0, 6).join(", ")}${versions.length > 6 ? " …" : ""}` : "no versions"}
    </p>
  </li>`;
}

export function SearchPage() {
  const { query: params } = useLocation();
  const q = params.get("q") || "";
  const offset = Number(params.get("offset") || 0);
  const found = useLoad(
    (signal) => (q ? get(`/search${query({ q, limit: PAGE, offset })}`, { signal }) : Promise.resolve(null)),
    [q, offset],
  );
  const data = found.data;
  const last = data ? Math.min(data.offset + data.items.length, data.total) : 0;
  return html`<section class="page">
    <header class="page-head">
      <div>
        <h1>Search</h1>
        <p class="muted">Words, packages (<code>samtools>=1.19</code>, <code>pkg:bwa</code>), labels
          (<code>label:org.opencontainers.image.source=*</code>) and filters (<code>workspace:</code>,
          <code>source:</code>, <code>type:</code>, <code>platform:</code>).</p>
      </div>
    </header>
    <${ErrorNote} error=${found.error} />
    ${!q && html`<${Empty} title="Search the catalog" icon="box"><p>Type in the search box above.</p></${Empty}>`}
    ${found.loading && !data && q && html`<${Spinner} />`}
    ${data && data.total === 0 && html`<${Empty} title="Nothing found" icon="box"><p>No image you may see matches <code>${q}</code>.</p></${Empty}>`}
    ${data && data.total > 0 &&
    html`<div class="search-layout">
      <${Facets} q=${q} facets=${data.facets} />
      <div>
        <p role="status">${data.offset + 1}–${last} of ${data.total.toLocaleString("en")}${data.total_exact ? "" : "+"} image${data.total === 1 ? "" : "s"}</p>
        <ol class="results">${data.items.map((item) => html`<${Result} key=${item.name} item=${item} />`)}</ol>
        <nav class="row" aria-label="Pages">
          <button type="button" class="btn btn-secondary" disabled=${offset === 0}
            onClick=${() => navigate(searchUrl(q, Math.max(0, offset - PAGE)))}>Previous</button>
          <button type="button" class="btn btn-secondary" disabled=${data.items.length < PAGE}
            onClick=${() => navigate(searchUrl(q, offset + PAGE))}>Next</button>
        </nav>
      </div>
    </div>`}
  </section>`;
}

// The search box of the shell's header: it opens the results page.
export function SearchBox() {
  const { path, query: params } = useLocation();
  const current = path === "/search" ? params.get("q") || "" : "";
  const submit = (event) => {
    event.preventDefault();
    const q = new FormData(event.target).get("q").trim();
    if (q) navigate(searchUrl(q));
  };
  return html`<form role="search" class="searchbox" onSubmit=${submit}>
    <input type="search" name="q" key=${current} defaultValue=${current} maxlength="500" aria-label="Search the catalog"
      placeholder="Search images, packages, labels" />
  </form>`;
}
