// What a history event changed: each field with its value before and after (an image's
// description, visibility, type, regions, clusters, and the access a version had before
// visibility was one setting per image; a build definition's fields), and for a
// Dockerfile the lines removed and added.
import { html } from "../lib/html.js";

const FIELD_TEXT = {
  access: "access (before one visibility per image)",
  visibility: "visibility",
  kind: "type",
  regions: "regions",
  cluster_compatibility: "clusters",
  description: "description",
  dockerfile: "Dockerfile",
  git_url: "git URL",
  git_ref: "git ref",
  git_directory: "folder",
  dockerfile_path: "Dockerfile path",
  build_args: "build arguments",
  external_destination: "push to",
};

// A value as the history shows it: lists and build arguments joined, nothing as "none", long text cut.
function shown(value) {
  if (value === null || value === undefined || value === "") return "none";
  let text;
  if (Array.isArray(value)) text = value.join(", ");
  else if (typeof value === "object") text = Object.entries(value).map(([k, v]) => `${k}=${v}`).join(", ");
  else text = String(value);
  if (!text) return "none";
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function Diff({ text }) {
  const lines = text.split("\n").filter((line) => !line.startsWith("---") && !line.startsWith("+++"));
  const kind = (line) => (line.startsWith("+") ? "diff-add" : line.startsWith("-") ? "diff-del" : line.startsWith("@@") ? "diff-at" : "");
  return html`<details class="diff-wrap"><summary>Dockerfile changed: show the lines</summary>
    <pre class="diff" aria-label="Dockerfile changes">${lines.map((line) => html`<span class=${kind(line)}>${line}\n</span>`)}</pre>
  </details>`;
}

export function Changes({ detail }) {
  const changes = Object.entries(detail?.changes || {});
  if (!changes.length) return null;
  return html`<ul class="changes">
    ${changes.map(([field, change]) =>
      "diff" in change
        ? html`<li key=${field}><${Diff} text=${change.diff} /></li>`
        : html`<li key=${field}>${FIELD_TEXT[field] || field.replace(/_/g, " ")}:${" "}<del>${shown(change.before)}</del>${" "}<span aria-hidden="true">→</span><span class="visually-hidden">became</span>${" "}<ins>${shown(change.after)}</ins></li>`,
    )}
  </ul>`;
}
