// "Import into Dockyard" on an external version of the image page: copies the version from its
// registry into Dockyard's storage (a job on the server, POST .../import) and shows the job's
// progress (bytes, speed, blobs) until the version is stored here; the page then reloads.
import { useEffect, useState } from "preact/hooks";
import { get, imagePath, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Button, ErrorNote, useAction } from "../components/ui.js";
import { Progress } from "./upload_parts.js";

const POLL_MS = 700;

export function ImportButton({ image, version, onImported }) {
  const path = `/images/${imagePath(image)}/versions/${encodeURIComponent(version.version)}/import`;
  const [job, setJob] = useState(null);
  const [start, busy, error] = useAction(async () => setJob(await post(path, { platforms: [] })));
  useEffect(() => {
    if (!job || job.state !== "running") return undefined;
    const timer = setTimeout(async () => {
      try {
        setJob(await get(path));
      } catch (e) {
        setJob({ ...job, state: "failed", error: e.message });
      }
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [job]);
  useEffect(() => {
    if (job && job.state === "succeeded") onImported();
  }, [job]);
  if (job && job.state === "running") {
    const p = job.progress || {};
    return html`<div class="import-progress" role="status" aria-live="polite">
      <p>Importing ${version.version} into Dockyard${p.blobs_total ? ` — blobs ${p.blobs_done} of ${p.blobs_total}` : ""}</p>
      <${Progress} sent=${p.bytes_done || 0} size=${p.bytes_total} speed=${p.bytes_per_second} label="Import progress" />
    </div>`;
  }
  return html`<${Button} icon="download" busy=${busy} onClick=${() => start()}
      aria-label=${`Import into Dockyard (${version.version})`}>Import into Dockyard</${Button}>
    <${ErrorNote} error=${error} />
    ${job && job.state === "failed" && html`<p class="error-note" role="alert">Import failed: ${job.error}</p>`}`;
}
