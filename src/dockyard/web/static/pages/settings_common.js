// Pieces the workspace settings and the admin pages share: who may do what (mirroring the
// API's roles, which stay the judge), the reason shown next to a control a role does not
// allow, and the section navigation.
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link } from "../lib/router.js";
import { query } from "../lib/api.js";
import { Button, Dialog, ErrorNote } from "../components/ui.js";

export const ROLES = ["reader", "developer", "maintainer", "owner"];
// Teams and robots hold at most maintainer: owners are members.
export const DELEGATED_ROLES = ["reader", "developer", "maintainer"];

export const atLeast = (role, needed) => Boolean(role) && ROLES.indexOf(role) >= ROLES.indexOf(needed);

const article = (word) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);
export const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

// Why a control is disabled: "Only owners change members; you are a developer here."
// Returns null when the role is enough.
export function needs(role, needed, what) {
  if (atLeast(role, needed)) return null;
  const plural = needed === "owner" ? "owners" : `${needed}s and owners`;
  const yours = role ? `you are ${article(role)} here` : "you hold no role here";
  return `Only ${plural} ${what}; ${yours}.`;
}

// The reason next to disabled controls; the controls point at it with aria-describedby.
export function Reason({ id, text }) {
  if (!text) return null;
  return html`<p class="reason-note" id=${id}><${Icon} name="lock" size=${16} />${text}</p>`;
}

// Sections of a page as links (?section=…): bookmarkable, and plain links for the keyboard.
export function SectionNav({ label, base, sections, current, extra = {} }) {
  return html`<nav class="subnav" aria-label=${label}>
    <ul>
      ${sections.map(
        ([key, text, icon]) => html`<li>
          <${Link} href=${`${base}${query({ ...extra, section: key })}`} aria-current=${key === current ? "page" : undefined}>
            <${Icon} name=${icon} size=${16} />${text}
          </${Link}>
        </li>`,
      )}
    </ul>
  </nav>`;
}

export function RoleSelect({ id, value, onChange, roles = ROLES, disabled, label, none, describedBy }) {
  return html`<select id=${id} value=${value ?? ""} disabled=${disabled} aria-label=${label}
    aria-describedby=${describedBy} onChange=${(e) => onChange(e.target.value || null)}>
    ${none && html`<option value="">${none}</option>`}
    ${roles.map((role) => html`<option value=${role}>${capital(role)}</option>`)}
  </select>`;
}

// "Are you sure?" for a change that cannot be undone from here.
export function Confirm({ title, children, action, label, busy, error, onClose }) {
  return html`<${Dialog} title=${title} onClose=${onClose}>
    ${children}
    <${ErrorNote} error=${error} />
    <div class="actions">
      <${Button} onClick=${onClose}>Cancel</${Button}>
      <${Button} kind="danger" icon="trash" busy=${busy} onClick=${() => action()}>${label}</${Button}>
    </div>
  </${Dialog}>`;
}

// A one-line error under a table row or a small form.
export function InlineError({ error }) {
  if (!error) return null;
  return html`<small class="reason" role="alert">${error.message}</small>`;
}

// The API path of a workspace, and of something under it.
export const wsPath = (name, rest = "") => `/workspaces/${encodeURIComponent(name)}${rest}`;

// "Saved", after a change that takes effect as soon as it is chosen (no Save button).
export function Saved({ when }) {
  if (!when) return null;
  return html`<small class="saved" role="status"><${Icon} name="ok" size=${14} />Saved</small>`;
}
