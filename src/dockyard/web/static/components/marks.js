// Trust marks (the API's `marks` on images, versions and search results, see dockyard.marks):
// badges, and the filter chips of the image list (GET /api/v1/versions?mark=...). "Signed" means a cosign
// signature verified against a key the workspace trusts; an unverified one stays "signature
// attached" (pages/image.js), a tampered one says "Signature invalid".
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";

export const MARKS = [
  ["official", "Official", "An administrator designated this workspace official"],
  ["verified", "Verified publisher", "An administrator verified this workspace's publisher"],
  ["dockerfile", "Dockerfile visible", "You may read the Dockerfile it was built from, or its provenance is attached"],
  ["built", "Built here", "Built by Dockyard"],
  ["signed", "Signed", "A cosign signature verified against a public key the workspace trusts"],
  ["sbom", "SBOM", "An SPDX or CycloneDX SBOM is attached"],
];

// A workspace no administrator designated is a user's: a badge, never a filter (the API's
// mark filter takes the marks above).
const USER = ["user", "User", "A user's workspace: no administrator designated it official or verified"];
const BADGES = [...MARKS.slice(0, 2), USER, ...MARKS.slice(2)];

function titleOf(key, title, marks) {
  if (key === "signed" && marks.signed_by) return `${title} (key ${marks.signed_by})`;
  if (key === "built" && marks.build_run) return `${title} (build run ${marks.build_run})`;
  return title;
}

export function MarkBadges({ marks }) {
  if (!marks) return null;
  const held = new Set(marks.marks);
  const shown = BADGES.filter(([key]) => held.has(key));
  if (!shown.length && marks.signature !== "invalid") return null;
  return html`<span class="marks" data-testid="marks">
    ${shown.map(
      ([key, label, title]) => html`<span key=${key} class=${`badge badge-mark mark-${key}`} title=${titleOf(key, title, marks)}>
        ${key === "signed" && html`<${Icon} name="ok" size=${14} />`}${label}</span>`,
    )}
    ${marks.signature === "invalid" &&
    html`<span class="badge badge-bad" title="A signature does not match this version (its payload names another digest, or it is malformed)"><${Icon} name="fail" size=${14} />Signature invalid</span>`}
  </span>`;
}

// One mark at a time, as the API filters: pressing the chosen one again clears it.
export function MarkChips({ value, onChange }) {
  return html`<div class="chips mark-chips" role="group" aria-label="Filter by trust mark">
    ${MARKS.map(
      ([key, label]) => html`<button key=${key} type="button" class=${`chip chip-toggle${value === key ? " chip-on" : ""}`}
        aria-pressed=${value === key ? "true" : "false"} onClick=${() => onChange(value === key ? "" : key)}>${label}</button>`,
    )}
  </div>`;
}
