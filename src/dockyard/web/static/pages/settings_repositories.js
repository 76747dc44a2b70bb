// Workspace settings: the workspace's repositories, public or private each, the default for
// new ones, and per-repository permissions (team roles, users' grants). Maintainers change
// repositories; owners change the default.
import { useState } from "preact/hooks";
import { del, get, patch, put, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { when } from "../lib/format.js";
import { Button, Dialog, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { DELEGATED_ROLES, InlineError, Reason, RoleSelect, Saved, atLeast, needs, wsPath } from "./settings_common.js";

const PAGE = 100;
const repoQuery = (name) => query({ name });

function TeamRoles({ repository, teams, permissions, onChanged }) {
  const held = Object.fromEntries(permissions.teams);
  const [saved, setSaved] = useState(null);
  const [set, busy, error] = useAction(async (team, role) => {
    setSaved(null);
    await put(`/repository/permissions/teams${repoQuery(repository)}`, { team, role });
    setSaved(team);
    onChanged();
  });
  if (teams.length === 0) return html`<p class="muted">The workspace has no teams: create them under Teams.</p>`;
  return html`<div class="table-wrap"><table class="data">
    <caption class="visually-hidden">Team roles on ${repository}</caption>
    <thead><tr><th scope="col">Team</th><th scope="col">Role on this repository</th></tr></thead>
    <tbody>
      ${teams.map(
        (t) => html`<tr key=${t.name}><td>${t.name}</td><td>
          <${RoleSelect} id=${`repo-team-${t.name}`} label=${`Role of team ${t.name} on ${repository}`} value=${held[t.name] || ""}
            roles=${DELEGATED_ROLES} none="None" disabled=${busy} onChange=${(role) => set(t.name, role)} />
          <${Saved} when=${saved === t.name && !busy} />
        </td></tr>`,
      )}
    </tbody>
  </table></div>
  <${InlineError} error=${error} />`;
}

function UserGrants({ repository, grants, onChanged }) {
  const [form, setForm] = useState({ username: "", action: "pull", days: "" });
  const setField = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [grant, granting, grantError] = useAction(async () => {
    await put(`/repository/permissions/users${repoQuery(repository)}`, {
      username: form.username.trim(),
      action: form.action,
      expires_in_days: form.days ? Number(form.days) : undefined,
    });
    setForm({ username: "", action: "pull", days: "" });
    onChanged();
  });
  const [revoke, , revokeError] = useAction(async (username) => {
    await del(`/repository/permissions/users/${encodeURIComponent(username)}${repoQuery(repository)}`);
    onChanged();
  });
  const fields = grantError?.fields || {};
  return html`
    ${grants.length === 0 && html`<p class="muted">No user holds a grant of their own on this repository.</p>`}
    ${grants.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Users' grants on ${repository}</caption>
      <thead><tr><th scope="col">User</th><th scope="col">May</th><th scope="col">Until</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${grants.map(
          (g) => html`<tr key=${g.id}><td>${g.username}</td><td>${g.action === "push" ? "Pull and push" : "Pull"}</td>
            <td>${g.expires_at ? when(g.expires_at) : "no end"}${g.request_id ? html` <span class="muted">(request ${g.request_id})</span>` : ""}</td>
            <td class="cell-actions"><${Button} kind="ghost" icon="trash" aria-label=${`Revoke the grant of ${g.username}`}
              onClick=${() => revoke(g.username)}>Revoke</${Button}></td></tr>`,
        )}
      </tbody>
    </table></div>`}
    <${InlineError} error=${revokeError} />
    <form class="inline-form" aria-label="Give a user access" onSubmit=${(e) => {
      e.preventDefault();
      grant();
    }}>
      <${Field} id="grant-username" label="Username" error=${fields.username}>
        <input id="grant-username" value=${form.username} autocomplete="off" onInput=${setField("username")} />
      </${Field}>
      <${Field} id="grant-action" label="May">
        <select id="grant-action" value=${form.action} onChange=${setField("action")}>
          <option value="pull">Pull</option>
          <option value="push">Pull and push</option>
        </select>
      </${Field}>
      <${Field} id="grant-days" label="For (days)" error=${fields.expires_in_days}>
        <input id="grant-days" type="number" min="1" max="366" placeholder="no end" value=${form.days} onInput=${setField("days")} />
      </${Field}>
      <${Button} kind="primary" type="submit" icon="plus" busy=${granting} disabled=${!form.username.trim()}>Give access</${Button}>
      <${ErrorNote} error=${Object.keys(fields).length ? null : grantError} />
    </form>`;
}

function Permissions({ workspace, repository, onClose }) {
  const permissions = useLoad((signal) => get(`/repository/permissions${repoQuery(repository)}`, { signal }), [repository]);
  const teams = useLoad((signal) => get(wsPath(workspace, "/teams"), { signal }), [workspace]);
  return html`<${Dialog} title=${`Permissions on ${repository}`} onClose=${onClose} wide>
    <${ErrorNote} error=${permissions.error || teams.error} />
    ${(!permissions.data || !teams.data) && !permissions.error && html`<${Spinner} label="Loading permissions…" />`}
    ${permissions.data &&
    teams.data &&
    html`<h3>Teams</h3>
      <${TeamRoles} repository=${repository} teams=${teams.data} permissions=${permissions.data} onChanged=${permissions.reload} />
      <h3 class="sub">Users</h3>
      <p class="muted">A user's own grant: pull, or pull and push, until a date or with no end. Approved access requests appear here.</p>
      <${UserGrants} repository=${repository} grants=${permissions.data.users} onChanged=${permissions.reload} />`}
    <div class="actions"><${Button} onClick=${onClose}>Close</${Button}></div>
  </${Dialog}>`;
}

function RepositoryRow({ workspace, repository, reason }) {
  const [open, setOpen] = useState(false);
  const [shown, setShown] = useState(repository);
  const [setVisibility, busy, error] = useAction(async (visibility) => {
    setShown(await put(`/repository/visibility${repoQuery(repository.name)}`, { visibility }));
  });
  const describedBy = reason ? "repositories-why" : undefined;
  return html`<tr>
    <td><code>${shown.name}</code></td>
    <td>
      <select value=${shown.visibility} aria-label=${`Visibility of ${shown.name}`} disabled=${Boolean(reason) || busy}
        aria-describedby=${describedBy} onChange=${(e) => setVisibility(e.target.value)}>
        <option value="private">Private</option>
        <option value="public">Public</option>
      </select>
      <small class="reason">${shown.visibility === "public" ? "Anyone may pull" : "Members and people given access"}</small>
      <${Saved} when=${shown !== repository && !busy} />
      <${InlineError} error=${error} />
    </td>
    <td>${when(shown.created_at)}</td>
    <td class="cell-actions">
      <${Button} kind="secondary" icon="lock" disabled=${Boolean(reason)} aria-describedby=${describedBy}
        aria-label=${`Permissions on ${shown.name}`} onClick=${() => setOpen(true)}>Permissions</${Button}>
      ${open && html`<${Permissions} workspace=${workspace} repository=${shown.name} onClose=${() => setOpen(false)} />`}
    </td>
  </tr>`;
}

function DefaultVisibility({ workspace, reason, onChanged }) {
  const [saved, setSaved] = useState(false);
  const [save, busy, error] = useAction(async (value) => {
    setSaved(false);
    await patch(wsPath(workspace.name), { default_visibility: value });
    setSaved(true);
    onChanged();
  });
  return html`<div class="field field-inline">
    <label for="default-visibility">New repositories are</label>
    <select id="default-visibility" value=${workspace.default_visibility} disabled=${Boolean(reason) || busy}
      aria-describedby=${reason ? "default-visibility-why" : undefined} onChange=${(e) => save(e.target.value)}>
      <option value="private">Private</option>
      <option value="public">Public</option>
    </select>
    <${Saved} when=${saved && !busy} />
    <${Reason} id="default-visibility-why" text=${reason} />
    <${InlineError} error=${error} />
  </div>`;
}

export function RepositoriesSection({ workspace, role, reload }) {
  const ws = workspace.name;
  const [pages, setPages] = useState([""]);
  const list = useLoad(
    async (signal) => {
      const all = [];
      for (const last of pages) all.push(...(await get(`/repositories${query({ workspace: ws, limit: PAGE, last })}`, { signal })));
      return all;
    },
    [ws, pages.length],
  );
  const rows = list.data || [];
  const more = rows.length >= pages.length * PAGE;
  const reason = needs(role, "maintainer", "change visibility and permissions");
  return html`
    <p class="muted">Anyone may pull a public repository; a private one only members and those given access.
      A repository's visibility is also the visibility of its image in the catalog and of all its versions,
      internal and external: one setting, changed here or on the image's page.</p>
    <${DefaultVisibility} workspace=${workspace} reason=${needs(role, "owner", "choose the default for new repositories")} onChanged=${reload} />
    <${Reason} id="repositories-why" text=${reason} />
    <${ErrorNote} error=${list.error} />
    ${list.loading && !list.data && html`<${Spinner} label="Loading repositories…" />`}
    ${list.data && rows.length === 0 &&
    html`<${Empty} title="No repositories yet" icon="box">
      ${atLeast(role, "developer")
        ? html`<p>Push one with <code>docker push ${location.host}/${ws}/IMAGE:VERSION</code>.</p>`
        : html`<p>None that you may pull: developers and owners push the workspace's images.</p>`}
    </${Empty}>`}
    ${rows.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Repositories of ${ws}</caption>
      <thead><tr><th scope="col">Repository</th><th scope="col">Visibility</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${rows.map((r) => html`<${RepositoryRow} key=${r.name} workspace=${ws} repository=${r} reason=${reason} />`)}
      </tbody>
    </table></div>`}
    ${more &&
    html`<div class="row"><${Button} icon="chevron" busy=${list.loading} onClick=${() => setPages([...pages, rows[rows.length - 1].name])}>Show more</${Button}></div>`}
    ${rows.length > 0 && html`<p class="hint"><${Icon} name="lock" size=${14} /> Only repositories you may pull are listed.</p>`}`;
}
