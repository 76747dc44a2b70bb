// The pieces of the "Image from a TAR" page: the drop zone, the progress of an upload, the
// steps, and the list of the user's unfinished uploads.
import { useEffect, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link } from "../lib/router.js";
import { ago, bytes, duration } from "../lib/format.js";
import { Button, ErrorNote, StatusBadge, useAction } from "../components/ui.js";
import { discard, remembered } from "./upload_transfer.js";

// Dropping a file anywhere else on the page must not make the browser open it instead.
function useNoStrayDrops() {
  useEffect(() => {
    const stop = (event) => event.preventDefault();
    window.addEventListener("dragover", stop);
    window.addEventListener("drop", stop);
    return () => {
      window.removeEventListener("dragover", stop);
      window.removeEventListener("drop", stop);
    };
  }, []);
}

// Drop a file here, or choose it with the (keyboard-usable) file input.
export function DropZone({ id, title, choose = "Choose a file…", onFile, onRefuse, busy, children }) {
  const [over, setOver] = useState(false);
  useNoStrayDrops();
  const dragOver = (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    setOver(true);
  };
  const drop = (event) => {
    event.preventDefault();
    setOver(false);
    if (busy) return;
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length === 1) onFile(files[0]);
    else onRefuse(files.length ? "Drop one archive at a time." : "That was not a file: drop the archive itself.");
  };
  const picked = (event) => {
    const [file] = event.target.files;
    event.target.value = ""; // picking the same file again still counts
    if (file) onFile(file);
  };
  return html`<div class=${`dropzone${over ? " dropzone-over" : ""}`} onDragEnter=${dragOver} onDragOver=${dragOver}
      onDragLeave=${() => setOver(false)} onDrop=${drop} data-testid="dropzone">
    <${Icon} name="upload" size=${36} />
    <p class="dropzone-title">${title}</p>
    ${children}
    <input type="file" id=${id} class="visually-hidden file-input" onChange=${picked} disabled=${busy} />
    <label for=${id} class=${`btn btn-secondary${busy ? " disabled" : ""}`}>
      ${busy ? html`<span class="spinner" aria-hidden="true"></span>` : html`<${Icon} name="file" />`}${choose}
    </label>
  </div>`;
}

export function Steps({ at }) {
  const steps = ["Upload the archive", "Describe the version", "Available"];
  return html`<ol class="steps" aria-label="Steps">
    ${steps.map(
      (label, i) => html`<li class=${i < at ? "step-done" : i === at ? "step-now" : ""} aria-current=${i === at ? "step" : undefined}>
        <span class="step-number" aria-hidden="true">${i < at ? "✓" : i + 1}</span>${label}
      </li>`,
    )}
  </ol>`;
}

// How far the upload is: the bar, bytes, and (while it goes) speed and time left.
export function Progress({ sent, size, speed, label = "Upload progress", live = true }) {
  const known = size !== null && size !== undefined;
  const left = known && speed ? (size - sent) / speed : null;
  const percent = known && size ? Math.floor((sent * 100) / size) : 0;
  return html`<div class="upload-progress">
    <progress max=${known ? size : undefined} value=${sent} aria-label=${label}
      aria-valuetext=${known ? `${percent}%, ${bytes(sent)} of ${bytes(size)}` : bytes(sent)}></progress>
    <p class="upload-figures">
      <span><strong>${bytes(sent)}</strong> of ${known ? bytes(size) : "?"} (${percent}%)</span>
      ${live && html`<span>${speed ? `${bytes(speed)}/s` : "— /s"}</span>`}
      ${live && html`<span>${left !== null ? `about ${duration(left)} left` : "time left: —"}</span>`}
    </p>
  </div>`;
}

const STATE_TEXT = {
  receiving: (u) => `${bytes(u.offset)} of ${u.size === null ? "?" : bytes(u.size)} received`,
  importing: () => "Dockyard is checking the archive",
  done: () => "Uploaded; not saved as a version yet",
  failed: (u) => `Refused: ${u.reason || "the archive could not be read"}`,
};
const BADGE = { receiving: "uploading", importing: "importing", done: "pending", failed: "failed" };

function UnfinishedUpload({ upload, onRemoved }) {
  const record = remembered(upload.id);
  const name = record ? record.name : `An archive of ${bytes(upload.size)}`;
  const [remove, busy, error] = useAction(async () => {
    await discard(upload.id);
    onRemoved();
  });
  const open = `/repository/upload?id=${encodeURIComponent(upload.id)}`;
  return html`<li class="upload-item">
    <div class="upload-item-main">
      <p class="upload-item-name"><${Icon} name="file" /><strong>${name}</strong>
        <${StatusBadge} status=${BADGE[upload.state] || upload.state} /></p>
      <p class="muted">${STATE_TEXT[upload.state]?.(upload) || upload.state} · workspace ${upload.workspace} · started ${ago(upload.created_at)}</p>
      ${upload.state === "receiving" && upload.size &&
      html`<progress max=${upload.size} value=${upload.offset} aria-label=${`${name}: received so far`}></progress>`}
      <${ErrorNote} error=${error} />
    </div>
    <div class="row">
      ${upload.state !== "failed" && html`<${Link} class="btn btn-primary" href=${open}>Continue</${Link}>`}
      <${Button} kind="secondary" icon="trash" busy=${busy} onClick=${() => remove()} aria-label=${`Discard ${name}`}>
        ${upload.state === "failed" ? "Dismiss" : "Discard"}</${Button}>
    </div>
  </li>`;
}

export function Unfinished({ uploads, onChange }) {
  if (!uploads.length) return null;
  return html`<section aria-labelledby="unfinished-title">
    <h2 id="unfinished-title">Unfinished uploads</h2>
    <p class="muted">Uploads you started (here or with <code>dockyard image upload</code>) that have not become a version yet.</p>
    <ul class="upload-list">
      ${uploads.map((upload) => html`<${UnfinishedUpload} key=${upload.id} upload=${upload} onRemoved=${onChange} />`)}
    </ul>
  </section>`;
}
