// "Docker Images": the build definitions of the current workspace as tiles, each with its
// build status (green: the latest changes are built; red: not built; orange: modified since
// the last successful build), name, description and delete; "New image" defines another.
// GET /workspaces/{workspace}/builds; each definition says what the reader may not do to it.
import { useEffect, useState } from "preact/hooks";
import { del, get, imagePath, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link, navigate } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { ago } from "../lib/format.js";
import { Button, Dialog, Empty, ErrorNote, Field, Spinner, StatusBadge, useAction, useLoad } from "../components/ui.js";

const STATUS = {
  built: ["built", "The latest changes are built"],
  not_built: ["not built", "Not built yet"],
  modified: ["modified", "Modified since the last successful build"],
};
const ACTIVE = new Set(["queued", "running"]);
const WRITERS = new Set(["developer", "maintainer", "owner"]);
export const STARTER = "# The recipe of this image: edit it, SAVE, then BUILD.\nFROM scratch\n";

export const shortName = (definition) => definition.name.slice(definition.workspace.length + 1);

export function BuildStatus({ status }) {
  const [badge, meaning] = STATUS[status] || [status, status];
  return html`<span class="build-status" title=${meaning}><${StatusBadge} status=${badge} /><span class="visually-hidden">: ${meaning}</span></span>`;
}

// What the tile says about the builds: the one running, else the last one.
function lastBuild(d) {
  const run = d.last_build;
  if (!run) return "Never built";
  if (ACTIVE.has(run.status)) return html`<span class="building"><span class="spinner" aria-hidden="true"></span>Build #${run.id} ${run.status}</span>`;
  if (run.status === "succeeded") return `Built ${ago(run.finished_at)} by ${run.started_by}`;
  return `Last build ${run.status} ${ago(run.finished_at || run.queued_at)}`;
}

export function ConfirmDelete({ definition, onClose, onDeleted }) {
  const [remove, busy, error] = useAction(async () => {
    await del(`/builds/${imagePath(definition.name)}`);
    onDeleted();
  });
  return html`<${Dialog} title="Delete this image definition?" onClose=${onClose}>
    <p><code>${definition.name}</code>, its files, its builds and their logs are deleted. Versions it already
      pushed stay in the Docker Repository.</p>
    <${ErrorNote} error=${error} />
    <div class="actions">
      <${Button} onClick=${onClose}>Cancel</${Button}>
      <${Button} kind="danger" icon="trash" busy=${busy} onClick=${() => remove()}>Delete</${Button}>
    </div>
  </${Dialog}>`;
}

function Tile({ definition: d, onDelete }) {
  const refusal = d.refused.delete;
  const reasonId = `delete-reason-${d.id}`;
  return html`<li class=${`tile tile-${d.status}`}>
    <div class="tile-head">
      <h2><${Link} href=${`/builds/${imagePath(d.name)}`}>${shortName(d)}</${Link}></h2>
      <button type="button" class="icon-btn tile-delete" aria-label=${`Delete ${d.name}`} disabled=${Boolean(refusal)}
        title=${refusal || `Delete ${d.name}`} aria-describedby=${refusal ? reasonId : undefined} onClick=${() => onDelete(d)}>
        <${Icon} name="trash" />
      </button>
      ${refusal && html`<span class="visually-hidden" id=${reasonId}>${refusal}</span>`}
    </div>
    <${BuildStatus} status=${d.status} />
    <p class="tile-desc">${d.description || html`<span class="muted">No description.</span>`}</p>
    <p class="tile-meta">
      <span><${Icon} name=${d.context === "git" ? "link" : "file"} size=${14} />${d.context === "git" ? "Git repository" : "Local folder"}</span>
      <span>${lastBuild(d)}</span>
    </p>
  </li>`;
}

function NewImage({ workspace, onClose }) {
  const [form, setForm] = useState({ name: "", description: "", context: "local", url: "", ref: "main" });
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [create, busy, error] = useAction(async () => {
    const body = { workspace, name: form.name.trim(), description: form.description, context: form.context };
    if (form.context === "git") body.git = { url: form.url.trim(), ref: form.ref.trim() };
    else body.dockerfile = STARTER;
    const created = await post("/builds", body);
    navigate(`/builds/${imagePath(created.name)}`);
  });
  const fields = error?.fields || {};
  return html`<${Dialog} title="New image" onClose=${onClose}>
    <form novalidate onSubmit=${(event) => {
      event.preventDefault();
      create();
    }}>
      <${Field} id="new-name" label="Name" error=${fields.name} hint=${`Builds push to ${workspace}/NAME in this Dockyard.`}>
        <input id="new-name" value=${form.name} onInput=${set("name")} autocomplete="off" spellcheck="false" autofocus
          aria-describedby="new-name-hint" />
      </${Field}>
      <${Field} id="new-description" label="Description" error=${fields.description}>
        <textarea id="new-description" rows="2" value=${form.description} onInput=${set("description")}></textarea>
      </${Field}>
      <fieldset class="checks">
        <legend>Build context</legend>
        <label><input type="radio" name="new-context" value="local" checked=${form.context === "local"} onChange=${set("context")} />Local folder: a Dockerfile and files you upload</label>
        <label><input type="radio" name="new-context" value="git" checked=${form.context === "git"} onChange=${set("context")} />Git repository</label>
      </fieldset>
      ${form.context === "git" &&
      html`<div class="grid-2">
        <${Field} id="new-url" label="Repository URL" error=${fields.url}>
          <input id="new-url" value=${form.url} onInput=${set("url")} placeholder="https://…" spellcheck="false" />
        </${Field}>
        <${Field} id="new-ref" label="Branch, tag or commit" error=${fields.ref}>
          <input id="new-ref" value=${form.ref} onInput=${set("ref")} spellcheck="false" />
        </${Field}>
      </div>`}
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" icon="plus" busy=${busy} disabled=${!form.name.trim()}>Create</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}

export function BuildsPage() {
  const { workspace, workspaces, user } = useSession();
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState(null);
  const list = useLoad(
    (signal) => (workspace ? get(`/workspaces/${encodeURIComponent(workspace)}/builds`, { signal }) : Promise.resolve([])),
    [workspace],
  );
  const building = (list.data || []).some((d) => d.last_build && ACTIVE.has(d.last_build.status));
  useEffect(() => {
    // While a build runs, the tiles follow it: its status changes when it ends.
    if (!building) return undefined;
    const timer = setTimeout(list.reload, 3000);
    return () => clearTimeout(timer);
  }, [building, list.data]);
  const role = workspaces.find((w) => w.name === workspace)?.my_role;
  const createRefusal =
    user.is_admin || WRITERS.has(role) ? null : `this needs the developer role (or higher) in workspace '${workspace}'`;
  const newButton = html`<${Button} kind="primary" icon="plus" disabled=${Boolean(createRefusal)} title=${createRefusal}
    aria-describedby=${createRefusal ? "create-reason" : undefined} onClick=${() => setCreating(true)}>New image</${Button}>`;
  return html`<section class="page">
    <header class="page-head">
      <div>
        <h1>Docker Images</h1>
        <p class="muted">Images defined by a Dockerfile and built by Dockyard${workspace ? html` in workspace <strong>${workspace}</strong>` : ""}.</p>
      </div>
      <div class="row">${newButton}</div>
    </header>
    ${createRefusal && html`<p class="hint" id="create-reason">${createRefusal}: ask an owner of ${workspace} to make you a developer.</p>`}
    ${!workspace && html`<${Empty} title="No workspace yet"><p>Create or join a workspace to define images.</p></${Empty}>`}
    <${ErrorNote} error=${list.error} />
    ${list.loading && !list.data && html`<${Spinner} label="Loading the images…" />`}
    ${workspace && list.data && list.data.length === 0 &&
    html`<${Empty} title="No Docker images yet">
      <p>Define an image by its Dockerfile (and the files it copies) or a git repository; Dockyard builds it and
        pushes it to <code>${location.host}/${workspace}/NAME</code>.</p>
      ${!createRefusal && newButton}
    </${Empty}>`}
    ${list.data && list.data.length > 0 &&
    html`<ul class="tiles" aria-label="Docker images">
      ${list.data.map((d) => html`<${Tile} key=${d.id} definition=${d} onDelete=${setDeleting} />`)}
    </ul>`}
    ${creating && html`<${NewImage} workspace=${workspace} onClose=${() => setCreating(false)} />`}
    ${deleting &&
    html`<${ConfirmDelete} definition=${deleting} onClose=${() => setDeleting(null)} onDeleted=${() => {
      setDeleting(null);
      list.reload();
    }} />`}
  </section>`;
}
