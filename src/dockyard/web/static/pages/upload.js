// Create > Image from a TAR (/repository/upload): drop or pick a `docker save` or OCI archive
// (plain, gzip or zstd), watch it upload in chunks (bytes, speed, time left), then name the
// version it becomes and follow it until it is available. The address names the upload
// (?id=...), so a reload comes back to it: the page finds it among the user's uploads
// (GET /archives), asks for the same file again, checks it, and sends the rest.
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link, navigate, useLocation } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { bytes } from "../lib/format.js";
import { Button, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { DropZone, Progress, Steps, Unfinished } from "./upload_parts.js";
import { Describe, Saved } from "./upload_describe.js";
import {
  Transfer,
  discard,
  fileRecord,
  fingerprint,
  notTheSameFile,
  pickedFiles,
  refusalText,
  remember,
  remembered,
} from "./upload_transfer.js";

const WRITERS = new Set(["developer", "maintainer", "owner"]);
const HOW = html`<p class="muted">Make one with <code>docker save IMAGE -o image.tar</code>, <code>podman save</code> or <code>skopeo copy docker://IMAGE oci-archive:image.tar</code>; gzip or zstd compressed is fine.</p>`;

// Pick a workspace and a file: the upload starts at once.
function Start({ uploads, reload }) {
  const { workspaces, workspace: current, user } = useSession();
  const writable = workspaces.filter((w) => user.is_admin || WRITERS.has(w.my_role));
  const [workspace, setWorkspace] = useState(writable.some((w) => w.name === current) ? current : writable[0]?.name || "");
  const [start, busy, error, setError] = useAction(async (file) => {
    if (!file.size) throw new Error(`${file.name} is empty: choose the archive itself.`);
    const print = await fingerprint(file);
    const created = await post("/archives", { workspace, size: file.size });
    remember(created.id, fileRecord(file, print, workspace));
    pickedFiles.set(created.id, file);
    navigate(`/repository/upload?id=${encodeURIComponent(created.id)}`);
  });
  if (!writable.length) {
    return html`<${Empty} title="You cannot add images yet" icon="lock">
      <p>Uploading needs the developer role in a workspace. Ask a workspace owner to add you.</p>
    </${Empty}>`;
  }
  return html`<${Steps} at=${0} />
    <div class="card upload-start">
      <${Field} id="upload-workspace" label="Upload to workspace" hint="The image will belong to this workspace.">
        <select id="upload-workspace" value=${workspace} onChange=${(e) => setWorkspace(e.target.value)} disabled=${busy}
          aria-describedby="upload-workspace-hint">
          ${writable.map((w) => html`<option value=${w.name}>${w.name}</option>`)}
        </select>
      </${Field}>
      <${DropZone} id="archive-file" title="Drop a docker save or OCI archive here" busy=${busy}
        onFile=${(file) => start(file)} onRefuse=${(text) => setError(new Error(text))}>
        ${HOW}
      </${DropZone}>
      <${ErrorNote} error=${error} />
    </div>
    <${Unfinished} uploads=${uploads} onChange=${reload} />`;
}

// The upload stopped with the page: ask for the file again, and check it is the same one.
function PickAgain({ id, status, onFile }) {
  const record = remembered(id);
  const [pick, busy, error, setError] = useAction(async (file) => {
    const print = await fingerprint(file);
    const why = notTheSameFile(status, record, file, print);
    if (why) throw new Error(`${why} Choose the file you started uploading, or discard this upload and start again.`);
    if (!record) remember(id, fileRecord(file, print, status.workspace));
    pickedFiles.set(id, file);
    onFile(file);
  });
  const name = record ? record.name : "the same file";
  return html`<div class="card">
    <h2>Continue the upload</h2>
    <p>The upload of <strong>${name}</strong> (${bytes(status.size)}) to workspace <strong>${status.workspace}</strong> stopped
      with the page. Dockyard has ${bytes(status.offset)} of it: choose ${name} again and the rest is sent.</p>
    ${!record && html`<p class="muted">This browser did not start the upload: only the size can be checked.</p>`}
    <${Progress} sent=${status.offset} size=${status.size} speed=${null} label="Received so far" live=${false} />
    <${DropZone} id="archive-again" title=${`Drop ${name} here`} choose=${`Choose ${record ? record.name : "the file"}…`} busy=${busy}
      onFile=${(file) => pick(file)} onRefuse=${(text) => setError(new Error(text))} />
    <${ErrorNote} error=${error} />
  </div>`;
}

function Refused({ status, onDone }) {
  const [dismiss, busy] = useAction(async () => {
    await discard(status.id);
    onDone();
  });
  return html`<div class="card">
    <${ErrorNote}>${refusalText(status.reason)}</${ErrorNote}>
    <p>Dockyard accepts the archives that <code>docker save</code>, <code>podman save</code> and <code>skopeo copy … oci-archive:</code> make, as they are or compressed with gzip or zstd.</p>
    <div class="actions"><${Button} kind="primary" icon="upload" busy=${busy} onClick=${() => dismiss()}>Upload another file</${Button}></div>
  </div>`;
}

function lostWhy(snap) {
  if (snap.offline) return "This computer is offline.";
  if (!snap.error || snap.error.status === 0) return "Dockyard cannot be reached.";
  return `Dockyard answered: ${snap.error.message.replace(/\.?$/, ".")}`;
}

// One upload session: sending, waiting for the network, importing, then the version form.
function Session({ id, initial }) {
  const [file, setFile] = useState(() => pickedFiles.get(id) || null);
  const [snap, setSnap] = useState({ phase: "checking", sent: initial.offset, size: initial.size, status: initial });
  const [transfer, setTransfer] = useState(null);
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const running = new Transfer(id, file, setSnap);
    setTransfer(running);
    running.run();
    return () => running.stop();
  }, [id, file, attempt]);
  const leave = () => navigate("/repository/upload", { replace: true });
  const [cancel, cancelling, cancelError] = useAction(async () => {
    transfer?.stop();
    await discard(id);
    leave();
  });
  const saved = (version) => {
    discard(id).catch(() => {}); // the version holds the blobs now; the session has done its work
    navigate(`/repository/upload?image=${encodeURIComponent(version.image)}&version=${encodeURIComponent(version.version)}`, { replace: true });
  };
  const status = snap.status || initial;
  const name = remembered(id)?.name || file?.name || "the archive";
  const { phase } = snap;
  if (phase === "done") {
    return html`<${Steps} at=${1} />
      <${Describe} status=${status} onSaved=${saved} onDiscard=${() => cancel()} discarding=${cancelling} />
      <${ErrorNote} error=${cancelError} />`;
  }
  if (phase === "failed") return html`<${Steps} at=${0} /><${Refused} status=${status} onDone=${leave} />`;
  if (phase === "need-file") return html`<${Steps} at=${0} /><${PickAgain} id=${id} status=${status} onFile=${setFile} />`;
  const sending = phase === "sending" || phase === "lost";
  return html`<${Steps} at=${0} />
    <div class="card upload-running">
      <h2><${Icon} name="file" />${name}</h2>
      <p class="muted">To workspace ${status.workspace}</p>
      ${phase === "checking" && html`<${Spinner} label="Asking Dockyard how far the upload got…" />`}
      ${sending && html`<${Progress} sent=${snap.sent} size=${snap.size} speed=${phase === "lost" ? null : snap.speed} />`}
      ${phase === "sending" && html`<p class="upload-state" role="status"><span class="spinner" aria-hidden="true"></span>Uploading…</p>`}
      ${phase === "lost" &&
      html`<div class="warning upload-lost" role="alert">
        <p><strong>Connection lost.</strong> ${lostWhy(snap)} Nothing sent is lost: the upload goes on from where
          Dockyard stopped receiving, by itself, as soon as Dockyard can be reached again.</p>
        <${Button} kind="secondary" icon="refresh" busy=${snap.retrying} onClick=${() => transfer?.retryNow()}>
          ${snap.retrying ? "Retrying…" : "Retry now"}</${Button}>
      </div>`}
      ${phase === "importing" &&
      html`<${Progress} sent=${snap.size} size=${snap.size} speed=${null} live=${false} />
        <p class="upload-state" role="status"><span class="spinner" aria-hidden="true"></span>Uploaded. Dockyard is checking the archive…</p>`}
      ${phase === "error" &&
      html`<${ErrorNote} error=${snap.error} />
        <${Button} kind="primary" icon="refresh" onClick=${() => setAttempt((n) => n + 1)}>Try again</${Button}>`}
      <${ErrorNote} error=${cancelError} />
      ${phase !== "importing" &&
      html`<div class="actions"><${Button} kind="secondary" icon="close" busy=${cancelling} onClick=${() => cancel()}>Cancel upload</${Button}></div>`}
    </div>`;
}

function Body() {
  const { query } = useLocation();
  const id = query.get("id");
  const image = query.get("image");
  const version = query.get("version");
  const uploads = useLoad((signal) => (image ? Promise.resolve([]) : get("/archives", { signal })), [id, image]);
  if (image && version) return html`<${Steps} at=${2} /><${Saved} image=${image} version=${version} />`;
  if (uploads.error) return html`<${ErrorNote} error=${uploads.error} />`;
  if (!uploads.data) return html`<${Spinner} label="Loading your uploads…" />`;
  if (!id) return html`<${Start} uploads=${uploads.data} reload=${uploads.reload} />`;
  const found = uploads.data.find((u) => u.id === id);
  if (!found) {
    return html`<${Empty} title="This upload is gone" icon="warn">
      <p>It was saved as a version, discarded, or it expired.</p>
      <${Link} class="btn btn-primary" href="/repository/upload">Upload an archive</${Link}>
    </${Empty}>`;
  }
  return html`<${Session} key=${id} id=${id} initial=${found} />`;
}

export function UploadPage() {
  useEffect(() => {
    document.title = "Image from a TAR · Dockyard";
    return () => {
      document.title = "Dockyard";
    };
  }, []);
  return html`<section class="page upload-page">
    <header class="page-head">
      <div>
        <p class="crumbs"><${Link} href="/repository">Docker Repository</${Link}> /</p>
        <h1>Image from a TAR</h1>
        <p class="muted">Upload an image archive; large files go in pieces, and a dropped connection or a reload does not start it over.</p>
      </div>
    </header>
    <${Body} />
  </section>`;
}
