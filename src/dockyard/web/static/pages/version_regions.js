// Regions of a pushed version, on the image versions table: "Add Region" / "Remove Region" in the
// Manage menu (maintainers), and the Regions cell. The cell shows the regions a version is
// available in (the list's `regions`); for a version changed here it asks
// GET /api/v1/images/{name}/versions/{v}/regions and shows each region's status, and the copy's
// progress while a copy runs (asked again every second until it ends).
import { useEffect, useState } from "preact/hooks";
import { del, get, imagePath, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { bytes } from "../lib/format.js";
import { Button, Dialog, ErrorNote, useAction, useLoad } from "../components/ui.js";

const POLL_MS = 1000;
const pathOf = (v) => `/images/${imagePath(v.image)}/versions/${encodeURIComponent(v.version)}/regions`;
const keyOf = (v) => `${v.image}:${v.version}`;
const watched = new Map(); // version key -> its latest regions, for versions changed here
const listeners = new Set();

function watch(version, regions) {
  watched.set(keyOf(version), regions);
  for (const listener of listeners) listener();
}

// The Manage menu's region items: one internal version, and who may manage its workspace.
export function regionItems(chosen, mayManage, open) {
  if (!chosen.length || !chosen.every((v) => mayManage(v.workspace))) return [];
  const reason =
    chosen.length !== 1
      ? "select one version to change its regions"
      : chosen[0].source !== "internal"
        ? "external images live in another registry"
        : undefined;
  return [
    { label: "Add Region", icon: "plus", disabled: Boolean(reason), reason, onSelect: () => open("add") },
    { label: "Remove Region", icon: "trash", disabled: Boolean(reason), reason, onSelect: () => open("remove") },
  ];
}

function describe(r) {
  if (r.status === "copying") {
    const part = r.bytes_total ? ` ${Math.floor((100 * r.bytes_done) / r.bytes_total)}% of ${bytes(r.bytes_total)}` : "";
    return `${r.region} (copying${part})`;
  }
  if (r.status === "failed") return `${r.region} (failed: ${r.reason})`;
  return r.status === "available" ? r.region : `${r.region} (${r.status})`;
}

export function RegionCell({ version }) {
  const [regions, setRegions] = useState(watched.get(keyOf(version)));
  useEffect(() => {
    const listener = () => setRegions(watched.get(keyOf(version)));
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, [version]);
  useEffect(() => {
    if (!regions?.some((r) => r.status === "copying" || r.status === "removing")) return undefined;
    const timer = setTimeout(async () => {
      try {
        watch(version, (await get(pathOf(version))).regions);
      } catch {
        // the last answer stays shown
      }
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [regions]);
  if (!regions) return version.regions.length ? version.regions.join(", ") : "—";
  return html`<span class="regions" data-regions=${keyOf(version)}>${regions.map(describe).join(", ")}</span>`;
}

// Add a region to a version, or remove one from it (the API refuses its last region).
export function RegionDialog({ version, mode, onClose }) {
  const configured = useLoad((signal) => get("/regions", { signal }), []);
  const current = useLoad((signal) => get(pathOf(version), { signal }), []);
  const [region, setRegion] = useState("");
  const held = new Set((current.data?.regions || []).map((r) => r.region));
  const choices = (configured.data || []).map((r) => r.name).filter((name) => (mode === "add" ? !held.has(name) : held.has(name)));
  useEffect(() => setRegion(choices[0] || ""), [choices.join(",")]);
  const [apply, busy, error] = useAction(async () => {
    const found = mode === "add" ? await post(pathOf(version), { region }) : await del(`${pathOf(version)}/${region}`);
    watch(version, found.regions);
    onClose();
  });
  const verb = mode === "add" ? "Add" : "Remove";
  return html`<${Dialog} title=${`${verb} a region: ${keyOf(version)}`} onClose=${onClose}>
    <p>${mode === "add"
      ? "The version's blobs are copied to the region by a background job; the table shows its progress."
      : "The version's blobs that no other version in the region needs are deleted from it. Its last region stays."}</p>
    <label class="field">
      <span>Region</span>
      <select value=${region} onChange=${(e) => setRegion(e.target.value)} aria-label="Region">
        ${choices.map((name) => html`<option value=${name}>${name}</option>`)}
      </select>
    </label>
    ${configured.data && choices.length === 0 && html`<p class="muted">No region to ${mode} here.</p>`}
    <${ErrorNote} error=${error || configured.error || current.error} />
    <div class="actions">
      <${Button} onClick=${onClose}>Cancel</${Button}>
      <${Button} kind=${mode === "add" ? "primary" : "danger"} busy=${busy} disabled=${!region} onClick=${() => apply()}>${verb} region</${Button}>
    </div>
  </${Dialog}>`;
}
