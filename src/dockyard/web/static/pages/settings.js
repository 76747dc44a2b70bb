// "Workspace settings" for the workspace chosen in the header: members and teams, robot
// accounts, repositories (visibility, permissions), the catalog policy and registry
// credentials, immutable tags, retention rules, the storage quota
// and webhooks; and creating an organisation workspace. The page reads the user's role from
// the API (my_role) and disables what that role may not do, saying why; the API still
// decides every change.
import { useState } from "preact/hooks";
import { get, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { useLocation } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { Button, Dialog, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { SectionNav, capital } from "./settings_common.js";
import { MembersSection, TeamsSection } from "./settings_people.js";
import { RobotsSection } from "./settings_robots.js";
import { RepositoriesSection } from "./settings_repositories.js";
import { CredentialsSection, PolicySection } from "./settings_catalog.js";
import { ImmutableTagsSection } from "./settings_tags.js";
import { RetentionSection } from "./settings_retention.js";
import { QuotaSection } from "./settings_quota.js";
import { WebhooksSection } from "./settings_webhooks.js";

const SECTIONS = [
  ["members", "Members", "user", MembersSection],
  ["teams", "Teams", "layers", TeamsSection],
  ["robots", "Robot accounts", "key", RobotsSection],
  ["repositories", "Repositories", "box", RepositoriesSection],
  ["policy", "Catalog policy", "filter", PolicySection],
  ["tags", "Immutable tags", "lock", ImmutableTagsSection],
  ["retention", "Retention", "clock", RetentionSection],
  ["credentials", "Registry credentials", "lock", CredentialsSection],
  ["storage", "Storage and quota", "box", QuotaSection],
  ["webhooks", "Webhooks", "bell", WebhooksSection],
];

function NewWorkspace({ onClose }) {
  const { refreshWorkspaces, setWorkspace } = useSession();
  const [form, setForm] = useState({ name: "", description: "", default_visibility: "private" });
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [create, busy, error] = useAction(async () => {
    const created = await post("/workspaces", { ...form, name: form.name.trim() });
    await refreshWorkspaces();
    setWorkspace(created.name);
    onClose();
  });
  const fields = error?.fields || {};
  return html`<${Dialog} title="New organisation workspace" onClose=${onClose}>
    <form novalidate onSubmit=${(e) => {
      e.preventDefault();
      create();
    }}>
      <${Field} id="ws-name" label="Name" hint="Lowercase letters, digits and . _ - ; it starts every image name, e.g. genomics/samtools"
        error=${fields.name}>
        <input id="ws-name" value=${form.name} onInput=${set("name")} autofocus autocomplete="off" />
      </${Field}>
      <${Field} id="ws-description" label="Description" error=${fields.description}>
        <input id="ws-description" value=${form.description} onInput=${set("description")} />
      </${Field}>
      <${Field} id="ws-visibility" label="New repositories are" error=${fields.default_visibility}>
        <select id="ws-visibility" value=${form.default_visibility} onChange=${set("default_visibility")}>
          <option value="private">Private: only members and people given access</option>
          <option value="public">Public: anyone may pull</option>
        </select>
      </${Field}>
      <p class="hint">You become its owner.</p>
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" busy=${busy} disabled=${!form.name.trim()}>Create workspace</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}

export function SettingsPage() {
  const { workspace } = useSession();
  const { query: search } = useLocation();
  const [creating, setCreating] = useState(false);
  const info = useLoad((signal) => (workspace ? get(`/workspaces/${encodeURIComponent(workspace)}`, { signal }) : Promise.resolve(null)), [workspace]);
  // The workspace just chosen, never the one before it while its answer is on its way: a section
  // shown with the previous workspace's figures would take what the user types for the wrong one.
  const shown = info.data && info.data.name === workspace ? info.data : null;
  const current = SECTIONS.find(([key]) => key === search.get("section")) || SECTIONS[0];
  const Section = current[3];
  const head = html`<header class="page-head">
    <div>
      <h1>Workspace settings</h1>
      ${shown &&
      html`<p class="muted">
        <strong>${shown.name}</strong> · ${shown.kind === "org" ? "organisation" : "personal workspace"} ·
        ${shown.my_role ? html` your role: <span class="role-tag">${capital(shown.my_role)}</span>` : " you hold no role here"}
      </p>`}
      ${!shown && !info.loading && html`<p class="muted">Choose a workspace in the header to manage it.</p>`}
    </div>
    <${Button} kind="primary" icon="plus" onClick=${() => setCreating(true)}>New organisation workspace</${Button}>
  </header>`;
  const dialog = creating && html`<${NewWorkspace} onClose=${() => setCreating(false)} />`;
  if (!workspace) {
    return html`<section class="page">${head}
      <${Empty} title="You belong to no workspace" icon="layers"><p>Create an organisation workspace to share images with others.</p></${Empty}>
      ${dialog}</section>`;
  }
  return html`<section class="page settings">
    ${head}
    <${ErrorNote} error=${info.error} />
    ${info.loading && !shown && html`<${Spinner} label="Loading the workspace…" />`}
    ${shown &&
    html`<div class="settings-body">
      <${SectionNav} label="Workspace settings sections" base="/workspaces" current=${current[0]}
        sections=${SECTIONS.map(([key, label, icon]) => [key, label, icon])} />
      <div class="settings-panel" key=${`${workspace}:${current[0]}`}>
        <h2><${Icon} name=${current[2]} />${current[1]}</h2>
        <${Section} workspace=${shown} role=${shown.my_role} reload=${info.reload} />
      </div>
    </div>`}
    ${dialog}
  </section>`;
}
