// "Docker Repository": every image version the user may see, one row each, filtered, sorted
// and paged by the server (GET /api/v1/versions). Selecting rows enables Manage.
import { useEffect, useState } from "preact/hooks";
import { del, get, imagePath, post, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link, navigate, useLocation } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { bytes, ago, shortDigest } from "../lib/format.js";
import { Button, Dialog, Empty, ErrorNote, Menu, StatusBadge, useAction, useLoad } from "../components/ui.js";
import { ColumnChooser, DataTable, Pager, useColumns } from "../components/table.js";
import { MarkBadges, MarkChips } from "../components/marks.js";
import { CreateExternal } from "./create_external.js";
import { RegionCell, RegionDialog, regionItems } from "./version_regions.js";

const LIMIT = 50;
const FILTERS = ["workspace", "source", "type", "status", "platform", "mark", "q", "sort", "order", "offset"];
const STATUSES = ["available", "pending", "failed", "unverified", "reachable", "unreachable"];
const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x"];

const COLUMNS = [
  {
    key: "name",
    label: "Name",
    sort: "name",
    always: true,
    render: (v) => html`<${Link} href=${`/images/${imagePath(v.image)}`}>${v.image}</${Link}>`,
  },
  { key: "version", label: "Version", sort: "version", always: true, render: (v) => html`<code>${v.version}</code>` },
  {
    key: "source",
    label: "Source",
    sort: "source",
    render: (v) =>
      v.source === "external"
        ? html`<span class="tag tag-external" title=${v.external_reference}><${Icon} name="link" size=${14} />External</span>`
        : html`<span class="tag tag-internal"><${Icon} name="box" size=${14} />Internal</span>`,
  },
  { key: "type", label: "Type", sort: "type", render: (v) => (v.kind === "bench" ? "Bench" : "Tool") },
  { key: "status", label: "Status", sort: "status", render: (v) => html`<${VersionStatus} version=${v} />` },
  { key: "marks", label: "Marks", render: (v) => html`<${MarkBadges} marks=${v.marks} />` },
  { key: "regions", label: "Regions", render: (v) => html`<${RegionCell} version=${v} />` },
  {
    key: "platforms",
    label: "Platforms",
    render: (v) => (v.platforms.length ? v.platforms.join(", ") : "—"),
  },
  { key: "size", label: "Size", sort: "size", className: "num", render: (v) => bytes(v.compressed_size) },
  { key: "digest", label: "Digest", hidden: true, render: (v) => html`<code>${shortDigest(v.digest)}</code>` },
  { key: "visibility", label: "Visibility", hidden: true, render: (v) => (v.visibility === "public" ? "Public" : "Private") },
  { key: "modified", label: "Modified", sort: "modified", render: (v) => html`<span title=${new Date(v.updated_at * 1000).toISOString()}>${ago(v.updated_at)}</span>` },
];

const keyOf = (v) => `${v.image}:${v.version}`;

// The status of a version; external ones can be verified here, and say why when they fail.
export function VersionStatus({ version }) {
  const [shown, setShown] = useState(version);
  useEffect(() => setShown(version), [version]);
  const [verify, busy, error] = useAction(async () => {
    setShown(await post(`/images/${imagePath(version.image)}/versions/${encodeURIComponent(version.version)}/verify`));
  });
  return html`<div class="status-cell">
    <${StatusBadge} status=${shown.status} />
    ${shown.source === "external" &&
    html`<${Button} kind="ghost" icon="refresh" busy=${busy} onClick=${() => verify()}
      aria-label=${`Verify ${keyOf(version)}`}>Verify</${Button}>`}
    ${shown.status === "unreachable" && shown.status_reason && html`<small class="reason">${shown.status_reason}</small>`}
    ${shown.status === "failed" && shown.status_reason && html`<small class="reason">${shown.status_reason}</small>`}
    ${shown.status === "reachable" && busy === false && shown.digest && shown !== version &&
    html`<small class="reason">${shortDigest(shown.digest)} · ${shown.platforms.join(", ") || "no platforms"} · ${bytes(shown.compressed_size)}</small>`}
    ${error && html`<small class="reason" role="alert">${error.message}</small>`}
  </div>`;
}

function Filters({ params, set, workspaces }) {
  const [text, setText] = useState(params.q || "");
  useEffect(() => setText(params.q || ""), [params.q]);
  useEffect(() => {
    if ((params.q || "") === text) return undefined;
    const timer = setTimeout(() => set({ q: text, offset: "" }), 300);
    return () => clearTimeout(timer);
  }, [text]);
  const select = (key, label, options) => html`<label class="filter">
    <span>${label}</span>
    <select value=${params[key] || ""} onChange=${(e) => set({ [key]: e.target.value, offset: "" })}>
      <option value="">All</option>
      ${options.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
    </select>
  </label>`;
  return html`<div class="filters" role="search">
    <label class="search">
      <${Icon} name="search" />
      <span class="visually-hidden">Search images</span>
      <input type="search" placeholder="Search name or description" value=${text} onInput=${(e) => setText(e.target.value)} />
    </label>
    ${select("workspace", "Workspace", workspaces.map((w) => [w.name, w.name]))}
    ${select("source", "Source", [["internal", "Internal"], ["external", "External"]])}
    ${select("type", "Type", [["tool", "Tool"], ["bench", "Bench"]])}
    ${select("status", "Status", STATUSES.map((s) => [s, s[0].toUpperCase() + s.slice(1)]))}
    ${select("platform", "Platform", PLATFORMS.map((p) => [p, p]))}
  </div>`;
}

function ConfirmDelete({ versions, onClose, onDeleted }) {
  const [remove, busy, error] = useAction(async () => {
    for (const v of versions) await del(`/images/${imagePath(v.image)}/versions/${encodeURIComponent(v.version)}`);
    onDeleted();
  });
  const internal = versions.some((v) => v.source === "internal");
  return html`<${Dialog} title=${`Delete ${versions.length === 1 ? "this version" : `${versions.length} versions`}?`} onClose=${onClose}>
    <p>${internal
      ? "Pushed versions lose their tag here and their bytes at the next garbage collection; external ones leave the catalog (they stay in their own registries). This cannot be undone:"
      : "These external versions are removed from the catalog (the images stay in their own registries):"}</p>
    <ul class="plain">${versions.map((v) => html`<li><code>${keyOf(v)}</code></li>`)}</ul>
    <${ErrorNote} error=${error} />
    <div class="actions">
      <${Button} onClick=${onClose}>Cancel</${Button}>
      <${Button} kind="danger" icon="trash" busy=${busy} onClick=${() => remove()}>Delete</${Button}>
    </div>
  </${Dialog}>`;
}

// Who may delete a workspace's versions: its maintainers and owners, and admins (as the API says).
export const DELETERS = new Set(["maintainer", "owner"]);
export function mayDelete(session, workspace) {
  return session.user.is_admin || DELETERS.has(session.workspaces.find((w) => w.name === workspace)?.my_role);
}

// Which Manage actions the selection allows, and why not when it does not.
function manageItems(chosen, { setDeleting, download, session, setRegionMode }) {
  const external = chosen.filter((v) => v.source === "external");
  const downloadReason =
    chosen.length !== 1
      ? "select one version to download"
      : external.length
        ? "external images live in another registry: pull them from there"
        : chosen[0].status !== "available"
          ? `the version is ${chosen[0].status}, not available`
          : undefined;
  const items = [
    { label: "Download (docker load)", icon: "download", disabled: Boolean(downloadReason), reason: downloadReason, onSelect: () => download("docker") },
    { label: "Download (OCI archive)", icon: "download", disabled: Boolean(downloadReason), reason: downloadReason, onSelect: () => download("oci") },
  ];
  items.push(...regionItems(chosen, (workspace) => mayDelete(session, workspace), setRegionMode));
  // Offered only to who may delete every chosen version (the API would refuse the others).
  if (chosen.length && chosen.every((v) => mayDelete(session, v.workspace))) {
    items.push({ label: "Delete", icon: "trash", onSelect: () => setDeleting(true) });
  }
  return items;
}

export function RepositoryPage() {
  const { query: search } = useLocation();
  const session = useSession();
  const { workspace } = session;
  const params = Object.fromEntries(FILTERS.map((key) => [key, search.get(key) || ""]));
  const sort = params.sort || "name";
  const order = params.order || "asc";
  const offset = Math.max(0, Number.parseInt(params.offset || "0", 10) || 0);
  const set = (changes) => navigate(`/repository${query({ ...params, ...changes })}`, { replace: true });
  const [columns, shown, toggle] = useColumns("dockyard.repository.columns", COLUMNS);
  const [selected, setSelected] = useState(new Set());
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [regionMode, setRegionMode] = useState(null);
  const [created, setCreated] = useState(null);
  const workspaces = useLoad((signal) => get("/workspaces", { signal }), []);
  const page = useLoad(
    (signal) =>
      get(
        `/versions${query({
          workspace: params.workspace,
          source: params.source,
          type: params.type,
          status: params.status,
          platform: params.platform,
          mark: params.mark,
          q: params.q,
          sort,
          order,
          limit: LIMIT,
          offset,
        })}`,
        { signal },
      ),
    [search.toString()],
  );
  useEffect(() => setSelected(new Set()), [search.toString()]);
  const rows = page.data?.items || [];
  const chosen = rows.filter((v) => selected.has(keyOf(v)));
  const download = (format) => {
    const v = chosen[0];
    window.location.assign(`/api/v1/images/${imagePath(v.image)}/versions/${encodeURIComponent(v.version)}/archive?format=${format}`);
  };
  const filtered = FILTERS.some((key) => !["sort", "order", "offset"].includes(key) && params[key]);
  return html`<section class="page">
    <header class="page-head">
      <div>
        <h1>Docker Repository</h1>
        <p class="muted">Images and versions you may see, across workspaces.</p>
      </div>
      <div class="row">
        <${Menu} id="manage" label="Manage" disabled=${chosen.length === 0} items=${manageItems(chosen, { setDeleting, download, session, setRegionMode })} />
        <${Menu} id="create" kind="primary" label="Create" items=${[
          { label: "External image", icon: "link", onSelect: () => setCreating(true) },
          { label: "Image from a TAR", icon: "upload", onSelect: () => navigate("/repository/upload") },
        ]} />
      </div>
    </header>
    <div class="toolbar">
      <${Filters} params=${params} set=${set} workspaces=${workspaces.data || []} />
      <${ColumnChooser} columns=${COLUMNS} shown=${shown} toggle=${toggle} />
    </div>
    <${MarkChips} value=${params.mark} onChange=${(mark) => set({ mark, offset: "" })} />
    <${ErrorNote} error=${page.error} />
    ${page.loading && !page.data && html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>Loading images…</p>`}
    ${page.data && rows.length === 0 && !filtered &&
    html`<${Empty} title="No images yet">
      <p>Push one with <code>docker push ${location.host}/${workspace || "WORKSPACE"}/IMAGE:VERSION</code>,
        upload a <code>docker save</code> tar, or register an image from another registry.</p>
      <div class="row empty-actions">
        <${Button} kind="primary" icon="link" onClick=${() => setCreating(true)}>Create external image</${Button}>
        <${Button} icon="upload" onClick=${() => navigate("/repository/upload")}>Upload a TAR</${Button}>
      </div>
    </${Empty}>`}
    ${page.data && rows.length === 0 && filtered &&
    html`<${Empty} title="No image matches these filters" icon="filter">
      <${Button} onClick=${() => navigate("/repository")}>Clear filters</${Button}>
    </${Empty}>`}
    ${rows.length > 0 &&
    html`<${DataTable} caption="Image versions" columns=${columns} rows=${rows} rowKey=${keyOf} sort=${sort} order=${order}
      onSort=${(s, o) => set({ sort: s, order: o, offset: "" })} selected=${selected} onSelect=${setSelected} busy=${page.loading} />
      <${Pager} total=${page.data.total} exact=${page.data.total_exact !== false} shown=${rows.length} limit=${LIMIT} offset=${offset} onPage=${(o) => set({ offset: o || "" })} />`}
    ${created &&
    html`<p class="notice" role="status"><${Icon} name="ok" />Created <code>${keyOf(created)}</code> (external, not verified yet):
      press Verify to check that it can be pulled. <${Link} href=${`/images/${imagePath(created.image)}`}>Open the image</${Link}></p>`}
    ${creating && html`<${CreateExternal} onClose=${() => setCreating(false)} onCreated=${(v) => {
      setCreating(false);
      setCreated(v);
      set({ q: v.image.split("/").pop(), workspace: "", source: "", type: "", status: "", platform: "", mark: "", offset: "" });
      page.reload();
    }} />`}
    ${regionMode && chosen.length === 1 && html`<${RegionDialog} version=${chosen[0]} mode=${regionMode} onClose=${() => setRegionMode(null)} />`}
    ${deleting && html`<${ConfirmDelete} versions=${chosen} onClose=${() => setDeleting(false)} onDeleted=${() => {
      setDeleting(false);
      page.reload();
    }} />`}
  </section>`;
}
