// The editor of one build definition (/builds/<workspace>/<name>): name and description, its
// status and changes, the build context (a local folder: the Dockerfile and files; or a git
// repository), SAVE and BUILD, the latest build's log streaming live, and the build history.
// SAVE sends only what changed (PATCH /builds/{name}); BUILD starts a build of what is saved
// (POST /builds/{name}/runs). What the reader may not do comes from the definition itself.
import { useEffect, useState } from "preact/hooks";
import { get, imagePath, patch, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Changes as Changed } from "../components/changes.js";
import { Icon } from "../lib/icons.js";
import { Link, navigate } from "../lib/router.js";
import { when } from "../lib/format.js";
import { Button, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { BuildStatus, ConfirmDelete, STARTER, shortName } from "./builds.js";
import { CodeEditor } from "./editor_code.js";
import { ContextFiles } from "./editor_files.js";
import { BuildHistory, CurrentBuild } from "./editor_log.js";

const EVENTS = {
  created: "Created",
  modified: "Modified",
  "build.started": "Build started",
  built: "Built",
  "build.failed": "Build failed",
  "build.cancelled": "Build cancelled",
};

function formOf(d) {
  return {
    name: shortName(d),
    description: d.description,
    context: d.context,
    dockerfile: d.dockerfile ?? STARTER,
    url: d.git?.url ?? "",
    ref: d.git?.ref ?? "main",
    directory: d.git?.directory ?? "",
    gitDockerfile: d.git?.dockerfile ?? "Dockerfile",
  };
}

// The PATCH body: only the fields that differ from the saved definition.
function changes(form, d) {
  const saved = formOf(d);
  const body = {};
  if (form.name.trim() !== saved.name) body.name = form.name.trim();
  if (form.description !== saved.description) body.description = form.description;
  if (form.context !== d.context) body.context = form.context;
  if (form.context === "local" && (form.dockerfile !== d.dockerfile || body.context)) body.dockerfile = form.dockerfile;
  const git = { url: form.url.trim(), ref: form.ref.trim(), directory: form.directory.trim(), dockerfile: form.gitDockerfile.trim() || "Dockerfile" };
  const gitChanged = ["url", "ref", "directory"].some((k) => git[k] !== saved[k]) || git.dockerfile !== saved.gitDockerfile;
  if (form.context === "git" && (gitChanged || body.context)) body.git = git;
  return body;
}

function Changes({ definition: d, tick }) {
  const events = useLoad((signal) => get(`/builds/${imagePath(d.name)}/events`, { signal }), [d.name, tick]);
  const built = d.last_success;
  return html`<section class="card" aria-labelledby="changes-title">
    <h2 id="changes-title">Changes</h2>
    <dl class="facts">
      <dt>Created</dt><dd>${d.created_by}, ${when(d.created_at)}</dd>
      <dt>Modified</dt><dd>${d.updated_by}, ${when(d.updated_at)}</dd>
      <dt>Built</dt><dd>${built ? html`${built.started_by}, ${when(built.finished_at)} (<code>${built.version}</code>)` : "never"}</dd>
    </dl>
    ${events.data &&
    html`<details class="events">
      <summary>All changes (${events.data.length})</summary>
      <ol class="timeline">
        ${events.data.map(
          (e) => html`<li><strong>${EVENTS[e.kind] || e.kind}</strong>${e.detail.fields && !e.detail.changes ? html` <span class="muted">(${e.detail.fields.join(", ")})</span>` : ""}
            <span class="muted"> by ${e.actor}, ${when(e.at)}</span><${Changed} detail=${e.detail} /></li>`,
        )}
      </ol>
    </details>`}
    <${ErrorNote} error=${events.error} />
  </section>`;
}

function GitFields({ form, set, readOnly, fields }) {
  const input = (key, label, hint, placeholder) => html`<${Field} id=${`git-${key}`} label=${label} hint=${hint} error=${fields[key === "gitDockerfile" ? "dockerfile" : key]}>
    <input id=${`git-${key}`} value=${form[key]} onInput=${set(key)} readOnly=${readOnly} spellcheck="false" autocomplete="off"
      placeholder=${placeholder} aria-describedby=${hint ? `git-${key}-hint` : undefined} />
  </${Field}>`;
  return html`<div class="grid-2 git-fields">
    ${input("url", "Repository URL", "https://, ssh:// or git:// as the server may clone it", "https://git.example.org/lab/tool.git")}
    ${input("ref", "Branch, tag or commit", null, "main")}
    ${input("directory", "Folder with the Dockerfile", "The build context; empty: the repository's top folder", "docker/")}
    ${input("gitDockerfile", "Dockerfile name in that folder", null, "Dockerfile")}
  </div>`;
}

export function EditorPage({ name }) {
  const [definition, setDefinition] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [form, setForm] = useState(null);
  const [tick, setTick] = useState(0); // reloads the changes and the history
  const [saved, setSaved] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const refresh = async () => {
    try {
      setDefinition(await get(`/builds/${imagePath(name)}`));
      setTick((n) => n + 1);
    } catch (error) {
      setLoadError(error);
    }
  };
  useEffect(() => {
    setDefinition(null);
    setForm(null);
    setLoadError(null);
    get(`/builds/${imagePath(name)}`).then(
      (d) => {
        setDefinition(d);
        setForm(formOf(d));
      },
      setLoadError,
    );
  }, [name]);
  const [save, saving, saveError] = useAction(async () => {
    const body = changes(form, definition);
    const updated = await patch(`/builds/${imagePath(definition.name)}`, body);
    setDefinition(updated);
    setForm(formOf(updated));
    setSaved(true);
    setTick((n) => n + 1);
    if (updated.name !== definition.name) navigate(`/builds/${imagePath(updated.name)}`, { replace: true });
  });
  const [build, starting, buildError] = useAction(async () => {
    const run = await post(`/builds/${imagePath(definition.name)}/runs`);
    setDefinition((old) => ({ ...old, last_build: run }));
    setTick((n) => n + 1);
  });
  if (loadError) {
    return html`<section class="page"><p><${Link} href="/builds">← Docker Images</${Link}></p>
      ${loadError.status === 404
        ? html`<${Empty} title="No such image definition" icon="warn"><p><code>${name}</code> does not exist, or you are not a member of its workspace.</p></${Empty}>`
        : html`<${ErrorNote} error=${loadError} />`}</section>`;
  }
  if (!definition || !form) return html`<${Spinner} label="Loading the image definition…" />`;
  const d = definition;
  const body = changes(form, d);
  const dirty = Object.keys(body).length > 0;
  const editRefusal = d.refused.edit;
  const buildRefusal = d.refused.build || (dirty ? "save your changes first: a build uses the saved definition" : null);
  const set = (key) => (event) => {
    setSaved(false);
    setForm((old) => ({ ...old, [key]: event.target.value }));
  };
  const fields = saveError?.fields || {};
  const keys = (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      event.preventDefault();
      if (dirty && !editRefusal) save();
    }
  };
  return html`<section class="page editor" onKeyDown=${keys}>
    <p><${Link} href="/builds">← Docker Images</${Link}></p>
    <header class="page-head">
      <div>
        <h1>${d.name}</h1>
        <p class="row"><${BuildStatus} status=${d.status} />
          <span class="muted">${d.context === "git" ? "Built from a git repository" : "Built from a local folder"} · pushes <code>${d.name}:${d.version}</code></span></p>
      </div>
      <div class="editor-actions">
        <div class="row">
          <${Button} kind="secondary" icon="ok" class="btn btn-secondary btn-caps" busy=${saving} disabled=${!dirty || Boolean(editRefusal)}
            aria-describedby="save-state" onClick=${() => save()}>Save</${Button}>
          <${Button} kind="primary" icon="play" class="btn btn-primary btn-caps" busy=${starting} disabled=${Boolean(buildRefusal)}
            aria-describedby=${buildRefusal ? "build-reason" : undefined} onClick=${() => build()}>Build</${Button}>
          ${!d.refused.delete && html`<${Button} kind="danger" icon="trash" onClick=${() => setDeleting(true)}>Delete</${Button}>`}
        </div>
        <p class="reason" id="save-state" role="status">${editRefusal ? `Save: ${editRefusal}` : dirty ? "Unsaved changes" : saved ? "Saved" : "No unsaved changes"}</p>
        ${buildRefusal && html`<p class="reason" id="build-reason">Build: ${buildRefusal}</p>`}
      </div>
    </header>
    <${ErrorNote} error=${Object.keys(fields).length ? null : saveError} />
    <${ErrorNote} error=${buildError} />
    ${deleting && html`<${ConfirmDelete} definition=${d} onClose=${() => setDeleting(false)} onDeleted=${() => navigate("/builds")} />`}
    <div class="editor-grid">
      <section class="card" aria-labelledby="details-title">
        <h2 id="details-title">Details</h2>
        <${Field} id="def-name" label="Name" error=${fields.name} hint=${`In workspace ${d.workspace}: builds push to ${d.workspace}/NAME.`}>
          <input id="def-name" value=${form.name} onInput=${set("name")} readOnly=${Boolean(editRefusal)} spellcheck="false"
            autocomplete="off" aria-describedby="def-name-hint" />
        </${Field}>
        <${Field} id="def-description" label="Description" error=${fields.description}>
          <textarea id="def-description" rows="3" value=${form.description} onInput=${set("description")} readOnly=${Boolean(editRefusal)}></textarea>
        </${Field}>
      </section>
      <${Changes} definition=${d} tick=${tick} />
    </div>
    <section class="card context" aria-labelledby="context-title">
      <h2 id="context-title">Build context</h2>
      <fieldset class="segmented" disabled=${Boolean(editRefusal)}>
        <legend class="visually-hidden">Where the Dockerfile and its files come from</legend>
        ${[["local", "Local folder", "file"], ["git", "Git repository", "link"]].map(
          ([value, label, icon]) => html`<label class=${form.context === value ? "chosen" : ""}>
            <input type="radio" name="context" value=${value} checked=${form.context === value} onChange=${set("context")} />
            <${Icon} name=${icon} />${label}</label>`,
        )}
      </fieldset>
      ${form.context === "local"
        ? html`<div class="field">
              <label for="dockerfile">Dockerfile</label>
              <${CodeEditor} id="dockerfile" value=${form.dockerfile} readOnly=${Boolean(editRefusal)} describedBy="dockerfile-hint"
                onChange=${(text) => {
                  setSaved(false);
                  setForm((old) => ({ ...old, dockerfile: text }));
                }} />
              <p class="hint" id="dockerfile-hint">${editRefusal ? "Read only." : "Tab indents; press Escape, then Tab, to move on. Ctrl+S saves."}</p>
              ${fields.dockerfile && html`<p class="field-error" role="alert">${fields.dockerfile}</p>`}
            </div>
            ${d.context === "local"
              ? html`<${ContextFiles} definition=${d} onChanged=${(updated) => {
                  setDefinition(updated);
                  setTick((n) => n + 1);
                }} />`
              : html`<p class="hint">Save to switch to a local folder; then files can be added.</p>`}`
        : html`<${GitFields} form=${form} set=${set} readOnly=${Boolean(editRefusal)} fields=${fields} />`}
    </section>
    <section aria-labelledby="log-title">
      <h2 id="log-title">Build log</h2>
      ${d.last_build
        ? html`<${CurrentBuild} key=${d.last_build.id} definition=${d} run=${d.last_build} onChanged=${refresh} />`
        : html`<p class="muted">No builds yet.${d.refused.build ? "" : " BUILD starts one; its log appears here as it runs."}</p>`}
    </section>
    <section aria-labelledby="history-title">
      <h2 id="history-title">Build history</h2>
      <${BuildHistory} name=${d.name} tick=${tick} />
    </section>
  </section>`;
}
