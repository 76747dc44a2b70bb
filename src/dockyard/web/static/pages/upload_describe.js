// After the upload: what the archive holds, the form that makes a version of it (name,
// version, type, cluster compatibility for benches, a new image's visibility), and the new version's status,
// followed until Dockyard has inspected it.
import { useEffect, useState } from "preact/hooks";
import { get, imagePath, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { bytes } from "../lib/format.js";
import { Button, CopyText, ErrorNote, Field, Spinner, StatusBadge, useAction } from "../components/ui.js";

const WRITERS = new Set(["developer", "maintainer", "owner"]);
const FORMATS = { "docker-save": "A docker save archive", "docker-save-blobs": "A docker save archive", "oci-layout": "An OCI archive" };

// Name and version from an image's tag, as the server defaults them: `reg:5000/team/app:1.0` ->
// app, 1.0; no tag: latest.
export function fromTag(repoTag) {
  if (!repoTag) return ["", ""];
  const [path, digest] = repoTag.split("@");
  const last = path.split("/").pop();
  const colon = last.indexOf(":");
  if (colon >= 0) return [last.slice(0, colon).toLowerCase(), last.slice(colon + 1)];
  return [last.toLowerCase(), digest ? digest.split(":").pop().slice(0, 12) : "latest"];
}

function ArchiveImage({ image }) {
  return html`<span class="archive-image">
    <strong>${image.repo_tags.length ? image.repo_tags.join(", ") : "untagged"}</strong>
    <span class="muted">${image.platforms.join(", ") || "no platform"} · ${image.layers} layer${image.layers === 1 ? "" : "s"} · ${bytes(image.size)}</span>
  </span>`;
}

function Contents({ status, choice, choose }) {
  const format = FORMATS[status.format] || `An archive (${status.format})`;
  const compression = status.compression && status.compression !== "none" ? `, ${status.compression}-compressed` : "";
  return html`<div class="card archive-contents">
    <h2>What the archive holds</h2>
    <p class="muted">${format}${compression}. ${status.bytes_written !== null &&
      `Dockyard stored ${bytes(status.bytes_written)} of new layers${status.bytes_deduplicated ? `; ${bytes(status.bytes_deduplicated)} it had already` : ""}.`}</p>
    ${status.images.length === 1
      ? html`<p><${ArchiveImage} image=${status.images[0]} /></p>`
      : html`<fieldset class="checks">
          <legend>It holds ${status.images.length} images: which one becomes the version?</legend>
          ${status.images.map(
            (image) => html`<label class="archive-choice">
              <input type="radio" name="archive-image" checked=${choice === image.index} onChange=${() => choose(image.index)} />
              <${ArchiveImage} image=${image} />
            </label>`,
          )}
        </fieldset>`}
    ${status.warnings.map((warning) => html`<p class="warning" role="note">${warning}</p>`)}
  </div>`;
}

// Which field a refusal of the server is about (its messages start with the field's name).
function fieldOf(error) {
  if (!error || error.status !== 422 || Object.keys(error.fields).length) return null;
  const text = error.message.toLowerCase();
  if (text.startsWith("version ") || text.startsWith("invalid tag")) return "version";
  if (text.includes("repository name") || text.startsWith("name ")) return "name";
  if (text.startsWith("cluster_compatibility")) return "cluster_compatibility";
  return null;
}

export function Describe({ status, onSaved, onDiscard, discarding }) {
  const { workspaces, user } = useSession();
  const writable = workspaces.filter((w) => user.is_admin || WRITERS.has(w.my_role)).map((w) => w.name);
  if (!writable.includes(status.workspace)) writable.unshift(status.workspace);
  const [choice, setChoice] = useState(status.images[0]?.index ?? 0);
  const tagOf = (index) => status.images.find((i) => i.index === index)?.repo_tags[0];
  const [form, setForm] = useState(() => {
    const [name, version] = fromTag(tagOf(choice));
    return { workspace: status.workspace, name, version, type: "tool", clusters: "", visibility: "" };
  });
  const update = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const choose = (index) => {
    const [name, version] = fromTag(tagOf(index));
    setChoice(index);
    setForm((old) => ({ ...old, name, version }));
  };
  const [save, busy, error] = useAction(async (replace = false) => {
    const body = {
      image: choice,
      workspace: form.workspace,
      name: form.name.trim() || null,
      version: form.version.trim() || null,
      type: form.type,
      replace,
    };
    // A new image's visibility (its repository's); an existing image keeps its own.
    if (form.visibility) body.visibility = form.visibility;
    if (form.type === "bench") body.cluster_compatibility = form.clusters.split(/[\s,]+/).filter(Boolean);
    onSaved(await post(`/archives/${status.id}/create-version`, body));
  });
  const fields = { ...(error?.fields || {}) };
  const about = fieldOf(error);
  if (about) fields[about] = error.message;
  const exists = error?.status === 409 && error.message.includes("already exists");
  const general = Object.keys(fields).length ? null : error;
  const submit = (event) => {
    event.preventDefault();
    save(false);
  };
  const described = (id) => (fields[id] ? `${id}-error` : `${id}-hint`);
  return html`<div class="cards">
    <${Contents} status=${status} choice=${choice} choose=${choose} />
    <form class="card" onSubmit=${submit} novalidate aria-labelledby="describe-title">
      <h2 id="describe-title">Describe the version</h2>
      <div class="grid-2">
        <${Field} id="workspace" label="Save in workspace" error=${fields.workspace}>
          <select id="workspace" value=${form.workspace} onChange=${update("workspace")}>
            ${writable.map((name) => html`<option value=${name}>${name}</option>`)}
          </select>
        </${Field}>
        <${Field} id="visibility" label="Visibility of a new image" error=${fields.visibility}
          hint="For the image and all its versions (its repository's); an existing image keeps its own.">
          <select id="visibility" value=${form.visibility} onChange=${update("visibility")} aria-describedby=${described("visibility")}>
            <option value="">The workspace's default</option>
            <option value="private">Private: members and people given access</option>
            <option value="public">Public: anyone, signed in or not</option>
          </select>
        </${Field}>
        <${Field} id="name" label="Name" error=${fields.name} hint=${`The image: ${form.workspace}/${form.name || "NAME"}`}>
          <input id="name" value=${form.name} onInput=${update("name")} autocomplete="off" spellcheck="false"
            aria-describedby=${described("name")} aria-invalid=${fields.name ? "true" : undefined} />
        </${Field}>
        <${Field} id="version" label="Version" error=${fields.version} hint="Letters, digits, '.', '_' or '-'">
          <input id="version" value=${form.version} onInput=${update("version")} autocomplete="off" spellcheck="false"
            aria-describedby=${described("version")} aria-invalid=${fields.version ? "true" : undefined} />
        </${Field}>
      </div>
      <fieldset class="checks choice-row">
        <legend>Type</legend>
        <label><input type="radio" name="type" value="tool" checked=${form.type === "tool"} onChange=${update("type")} />Tool</label>
        <label><input type="radio" name="type" value="bench" checked=${form.type === "bench"} onChange=${update("type")} />Bench</label>
      </fieldset>
      ${form.type === "bench" &&
      html`<${Field} id="cluster_compatibility" label="Cluster compatibility" error=${fields.cluster_compatibility}
          hint="The clusters this benchmark runs on, separated by commas">
        <input id="cluster_compatibility" value=${form.clusters} onInput=${update("clusters")} autocomplete="off"
          aria-describedby=${described("cluster_compatibility")} />
      </${Field}>`}
      <${ErrorNote} error=${general} />
      ${exists && html`<p class="row">
        <${Button} kind="danger" busy=${busy} onClick=${() => save(true)}>Replace ${form.workspace}/${form.name}:${form.version}</${Button}>
        <span class="muted">or change the version above.</span>
      </p>`}
      <div class="actions">
        <${Button} kind="secondary" icon="trash" busy=${discarding} onClick=${onDiscard}>Discard upload</${Button}>
        <${Button} kind="primary" type="submit" busy=${busy}>Save</${Button}>
      </div>
    </form>
  </div>`;
}

// The saved version, followed until it is available (or failed): the page updates by itself.
export function Saved({ image, version }) {
  const [state, setState] = useState({ data: null, error: null });
  useEffect(() => {
    let timer = null;
    let stopped = false;
    let polls = 0;
    const load = async () => {
      try {
        const found = await get(`/images/${imagePath(image)}/versions/${encodeURIComponent(version)}`);
        if (stopped) return;
        setState({ data: found, error: null });
        polls += 1;
        if (found.status === "pending") timer = setTimeout(load, polls < 60 ? 1000 : 5000);
      } catch (error) {
        if (stopped) return;
        setState((old) => ({ ...old, error }));
        if (error.status !== 404 && error.status !== 401) timer = setTimeout(load, 5000);
      }
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [image, version]);
  const v = state.data;
  const reference = `${location.host}/${image}:${version}`;
  return html`<section class="card saved" aria-labelledby="saved-title" aria-live="polite">
    <div class="card-head">
      <h2 id="saved-title"><code>${image}:${version}</code></h2>
      ${v && html`<${StatusBadge} status=${v.status} />`}
    </div>
    ${!v && !state.error && html`<${Spinner} label="Loading the new version…" />`}
    <${ErrorNote} error=${state.error} />
    ${v?.status === "pending" && html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>
      Saved. Dockyard is reading its platforms and sizes; this page updates by itself.</p>`}
    ${v?.status === "failed" && html`<${ErrorNote}>Dockyard could not use this image: ${v.status_reason || "its inspection failed"}.</${ErrorNote}>`}
    ${v?.status === "available" && html`<p class="notice" role="status"><${Icon} name="ok" />Available: anyone who may see it can pull it now.</p>
      <dl class="facts">
        <dt>Digest</dt><dd><code>${v.digest}</code></dd>
        <dt>Platforms</dt><dd>${v.platforms.join(", ") || "—"}</dd>
        <dt>Size</dt><dd>${bytes(v.compressed_size)} compressed${v.uncompressed_size ? `, ${bytes(v.uncompressed_size)} unpacked` : ""}</dd>
        <dt>Type</dt><dd>${v.kind === "bench" ? `Bench${v.cluster_compatibility.length ? ` (${v.cluster_compatibility.join(", ")})` : ""}` : "Tool"}</dd>
      </dl>
      <${CopyText} text=${`docker pull ${reference}`} label="pull command" />`}
    <div class="actions">
      <${Link} class="btn btn-secondary" href="/repository/upload"><${Icon} name="upload" />Upload another</${Link}>
      <${Link} class="btn btn-primary" href=${`/images/${imagePath(image)}`}>Open the image</${Link}>
    </div>
  </section>`;
}
