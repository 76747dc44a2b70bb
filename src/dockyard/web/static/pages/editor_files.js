// The files of a local build context (what COPY and ADD see next to the Dockerfile): listed,
// added (files or a whole folder), replaced and removed one at a time. Each change is stored
// at once by the server (PUT/DELETE /builds/{name}/files/{path}), unlike the fields SAVE
// stores, and makes the definition "modified" if it was built.
import { useState } from "preact/hooks";
import { del, get, imagePath, put } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { bytes } from "../lib/format.js";
import { Button, Dialog, ErrorNote, Spinner, useAction, useLoad } from "../components/ui.js";

const filePath = (name, path) => `/builds/${imagePath(name)}/files/${imagePath(path)}`;

// A button that opens the file picker: the input itself takes the focus (keyboard users
// press Enter or Space on it), the label around it looks like a button.
function PickFiles({ id, label, icon = "upload", multiple, folder, disabled, onPick }) {
  return html`<label class=${`btn btn-secondary file-pick${disabled ? " disabled" : ""}`} for=${id}>
    <${Icon} name=${icon} />${label}
    <input id=${id} type="file" class="visually-hidden" multiple=${multiple} webkitdirectory=${folder ? "" : undefined}
      disabled=${disabled} onChange=${(event) => {
        const files = [...event.target.files];
        event.target.value = "";
        if (files.length) onPick(files);
      }} />
  </label>`;
}

function ConfirmRemove({ path, onClose, onConfirm }) {
  const [remove, busy, error] = useAction(async () => {
    await onConfirm();
    onClose();
  });
  return html`<${Dialog} title="Remove this file?" onClose=${onClose}>
    <p><code>${path}</code> is removed from the build context. The next build will not have it.</p>
    <${ErrorNote} error=${error} />
    <div class="actions">
      <${Button} onClick=${onClose}>Cancel</${Button}>
      <${Button} kind="danger" icon="trash" busy=${busy} onClick=${() => remove()}>Remove</${Button}>
    </div>
  </${Dialog}>`;
}

export function ContextFiles({ definition, onChanged }) {
  const name = definition.name;
  const refusal = definition.refused.edit;
  const files = useLoad((signal) => get(`/builds/${imagePath(name)}/files`, { signal }), [name, definition.context_digest]);
  const [folder, setFolder] = useState("");
  const [executable, setExecutable] = useState(false);
  const [removing, setRemoving] = useState(null);
  const [progress, setProgress] = useState(null);
  const [send, busy, error] = useAction(async (picked, target) => {
    let latest = null;
    try {
      for (const [index, file] of picked.entries()) {
        const relative = target || [folder.trim().replace(/^\/+|\/+$/g, ""), file.webkitRelativePath || file.name].filter(Boolean).join("/");
        setProgress(`Uploading ${relative} (${index + 1} of ${picked.length}, ${bytes(file.size)})…`);
        latest = await put(`${filePath(name, relative)}${executable ? "?executable=true" : ""}`, file);
      }
    } finally {
      setProgress(null);
      if (latest) onChanged(latest); // what was stored before a failure stays stored
    }
  });
  const remove = async (path) => onChanged(await del(filePath(name, path)));
  const list = files.data || [];
  return html`<section class="context-files" aria-labelledby="files-title">
    <h3 id="files-title">Files of the build context</h3>
    <p class="hint">What <code>COPY</code> and <code>ADD</code> read, next to the Dockerfile. Changes here are stored at once.</p>
    <${ErrorNote} error=${files.error} />
    ${!files.data && !files.error && html`<${Spinner} label="Loading the files…" />`}
    ${files.data && list.length === 0 && html`<p class="muted">No files yet: the Dockerfile alone is the context.</p>`}
    ${list.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Files of the build context</caption>
      <thead><tr><th scope="col">Path</th><th scope="col" class="num">Size</th><th scope="col">Mode</th>
        <th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${list.map(
          (f, i) => html`<tr key=${f.path}>
            <td><${Icon} name="file" size=${14} /> <code>${f.path}</code>${f.kind !== "file" ? html` <small class="muted">(${f.kind})</small>` : ""}</td>
            <td class="num">${bytes(f.size)}</td>
            <td><code>${f.mode}</code></td>
            <td class="file-actions">${!refusal && f.kind === "file" &&
            html`<${PickFiles} id=${`replace-${i}`} label=${html`Replace<span class="visually-hidden"> ${f.path}</span>`}
                icon="refresh" disabled=${busy} onPick=${(picked) => send(picked.slice(0, 1), f.path)} />`}
              ${!refusal && html`<${Button} kind="ghost" icon="trash" disabled=${busy} onClick=${() => setRemoving(f.path)}
                aria-label=${`Remove ${f.path}`}>Remove</${Button}>`}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>`}
    ${refusal
      ? html`<p class="hint">${refusal}: the files cannot be changed.</p>`
      : html`<div class="file-add">
          <label class="filter"><span>Into folder (optional)</span>
            <input value=${folder} onInput=${(e) => setFolder(e.target.value)} placeholder="e.g. scripts" spellcheck="false" /></label>
          <label class="check"><input type="checkbox" checked=${executable} onChange=${(e) => setExecutable(e.target.checked)} />Executable (0755)</label>
          <${PickFiles} id="add-files" label="Add files" multiple disabled=${busy} onPick=${(picked) => send(picked)} />
          <${PickFiles} id="add-folder" label="Add a folder" icon="layers" folder disabled=${busy} onPick=${(picked) => send(picked)} />
        </div>`}
    ${progress && html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>${progress}</p>`}
    <${ErrorNote} error=${error} />
    ${removing && html`<${ConfirmRemove} path=${removing} onClose=${() => setRemoving(null)} onConfirm=${() => remove(removing)} />`}
  </section>`;
}
