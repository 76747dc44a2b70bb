// "Admin" (administrators only): Dockyard's users (create, disable or enable, admin rights)
// and the audit log. Others get a plain refusal; the API refuses them too.
import { useEffect, useState } from "preact/hooks";
import { get, patch, post, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link, useLocation } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { ago, when } from "../lib/format.js";
import { Button, Dialog, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { InlineError, SectionNav } from "./settings_common.js";
import { AuditLog } from "./admin_audit.js";

const SECTIONS = [
  ["users", "Users", "user"],
  ["audit", "Audit log", "file"],
];

function NewUser({ onClose, onCreated }) {
  const [form, setForm] = useState({ username: "", password: "", full_name: "", email: "", is_admin: false });
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.type === "checkbox" ? event.target.checked : event.target.value }));
  const [create, busy, error] = useAction(async () => {
    const body = { username: form.username.trim(), password: form.password, is_admin: form.is_admin };
    if (form.full_name.trim()) body.full_name = form.full_name.trim();
    if (form.email.trim()) body.email = form.email.trim();
    onCreated(await post("/users", body));
  });
  const fields = error?.fields || {};
  return html`<${Dialog} title="New user" onClose=${onClose}>
    <form novalidate autocomplete="off" onSubmit=${(e) => {
      e.preventDefault();
      create();
    }}>
      <${Field} id="user-username" label="Username" hint="Lowercase letters, digits and . _ - ; it also names their personal workspace" error=${fields.username}>
        <input id="user-username" value=${form.username} onInput=${set("username")} autofocus autocomplete="off" />
      </${Field}>
      <${Field} id="user-password" label="Password" hint="At least 8 characters; they can change it later" error=${fields.password}>
        <input id="user-password" type="password" value=${form.password} onInput=${set("password")} autocomplete="new-password" />
      </${Field}>
      <div class="grid-2">
        <${Field} id="user-full-name" label="Full name (optional)" error=${fields.full_name}>
          <input id="user-full-name" value=${form.full_name} onInput=${set("full_name")} />
        </${Field}>
        <${Field} id="user-email" label="Email (optional)" error=${fields.email}>
          <input id="user-email" type="email" value=${form.email} onInput=${set("email")} />
        </${Field}>
      </div>
      <label class="switch"><input type="checkbox" checked=${form.is_admin} onChange=${set("is_admin")} /><span>Administrator</span></label>
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" busy=${busy} disabled=${!form.username.trim() || !form.password}>Create user</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}

function UserRow({ account, me, onChanged }) {
  const own = account.username === me;
  const [change, busy, error] = useAction(async (body) => onChanged(await patch(`/users/${encodeURIComponent(account.username)}`, body)));
  const adminReason = own && account.is_admin ? "another admin can remove your admin rights" : null;
  const disableReason = own ? "you cannot disable your own account" : null;
  return html`<tr class=${account.disabled ? "muted-row" : ""}>
    <td><strong>${account.username}</strong>${own && html` <span class="muted">(you)</span>`}
      ${account.full_name && html`<div class="muted">${account.full_name}</div>`}</td>
    <td>${account.email || html`<span class="muted">—</span>`}</td>
    <td>${account.is_admin ? html`<span class="badge badge-warn"><${Icon} name="key" size=${14} />Admin</span>` : "User"}</td>
    <td>${account.disabled ? html`<span class="badge badge-bad"><${Icon} name="stop" size=${14} />Disabled</span>` : html`<span class="badge badge-ok"><${Icon} name="ok" size=${14} />Active</span>`}</td>
    <td>${when(account.created_at)}</td>
    <td>${account.last_login_at ? ago(account.last_login_at) : html`<span class="muted">never</span>`}</td>
    <td class="cell-actions">
      <div class="row">
        <${Button} kind="secondary" busy=${busy} disabled=${Boolean(adminReason)} title=${adminReason}
          aria-label=${`${account.is_admin ? "Remove admin rights from" : "Make admin"} ${account.username}`}
          aria-describedby=${adminReason ? `why-${account.username}` : undefined}
          onClick=${() => change({ is_admin: !account.is_admin })}>${account.is_admin ? "Remove admin" : "Make admin"}</${Button}>
        <${Button} kind=${account.disabled ? "secondary" : "ghost"} busy=${busy} disabled=${Boolean(disableReason)} title=${disableReason}
          aria-label=${`${account.disabled ? "Enable" : "Disable"} ${account.username}`}
          aria-describedby=${disableReason ? `why-${account.username}` : undefined}
          onClick=${() => change({ disabled: !account.disabled })}>${account.disabled ? "Enable" : "Disable"}</${Button}>
      </div>
      ${own && html`<small class="reason" id=${`why-${account.username}`}>This is you: ${[disableReason, adminReason].filter(Boolean).join("; ")}.</small>`}
      <${InlineError} error=${error} />
    </td>
  </tr>`;
}

const PAGE = 100; // users per request; "Show more" reads the next page after the last name shown

// The users, searched and paged by the server (GET /users?q=&last=&limit=): a platform with
// 100,000 accounts shows its first 100 at once and never loads them all.
function Users() {
  const { user } = useSession();
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState(null);
  const [filter, setFilter] = useState("");
  const [search, setSearch] = useState("");
  useEffect(() => {
    const timer = setTimeout(() => setSearch(filter.trim()), 300);
    return () => clearTimeout(timer);
  }, [filter]);
  const first = useLoad((signal) => get(`/users${query({ q: search, limit: PAGE })}`, { signal }), [search]);
  const [more, setMore] = useState({ rows: [], done: false }); // the pages after the first
  const [changed, setChanged] = useState({}); // username -> the account as changed on this page
  useEffect(() => setMore({ rows: [], done: false }), [first.data]);
  const loaded = [...(first.data || []), ...more.rows];
  const rows = loaded.map((u) => changed[u.username] || u);
  const hasMore = Boolean(first.data) && (more.rows.length ? !more.done : first.data.length === PAGE);
  const [showMore, loadingMore, moreError] = useAction(async () => {
    const last = loaded[loaded.length - 1].username;
    const page = await get(`/users${query({ q: search, last, limit: PAGE })}`);
    setMore((old) => ({ rows: [...old.rows, ...page], done: page.length < PAGE }));
  });
  const onChanged = (account) => setChanged((old) => ({ ...old, [account.username]: account }));
  return html`
    <div class="toolbar">
      <label class="search">
        <${Icon} name="search" />
        <span class="visually-hidden">Search users</span>
        <input type="search" placeholder="Search name or email" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      </label>
      <${Button} kind="primary" icon="plus" onClick=${() => setCreating(true)}>New user</${Button}>
    </div>
    ${created &&
    html`<p class="notice" role="status"><${Icon} name="ok" />Created <strong>${created.username}</strong>${created.is_admin ? " (admin)" : ""},
      with a personal workspace of the same name. Give them their password.</p>`}
    <${ErrorNote} error=${first.error} />
    ${first.loading && !first.data && html`<${Spinner} label="Loading users…" />`}
    ${first.data && rows.length === 0 && html`<${Empty} title=${search ? `No user matches “${search}”` : "No users"} icon="user" />`}
    ${rows.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Users</caption>
      <thead><tr><th scope="col">User</th><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th>
        <th scope="col">Created</th><th scope="col">Last sign-in</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${rows.map((u) => html`<${UserRow} key=${u.username} account=${u} me=${user.username} onChanged=${onChanged} />`)}</tbody>
    </table></div>
    <div class="pager-more">
      <p class="hint">${rows.length.toLocaleString()} ${rows.length === 1 ? "user" : "users"}${search ? ` matching “${search}”` : ""}${hasMore ? " shown, more to come" : ""}.</p>
      ${hasMore && html`<${Button} icon="chevron" busy=${loadingMore} onClick=${() => showMore()}>Show more</${Button}>`}
    </div>
    <${ErrorNote} error=${moreError} />`}
    ${creating &&
    html`<${NewUser} onClose=${() => setCreating(false)} onCreated=${(u) => {
      setCreating(false);
      setCreated(u);
      first.reload();
    }} />`}`;
}

export function AdminPage() {
  const { user } = useSession();
  const { query: search } = useLocation();
  if (!user.is_admin) {
    return html`<section class="page">
      <h1>Admin</h1>
      <${Empty} title="Only administrators may open this page" icon="lock">
        <p>It manages Dockyard's users and shows the audit log. You are signed in as <strong>${user.username}</strong>,
          who is not an administrator; ask one if you need something changed.</p>
        <p><${Link} href="/repository">Back to the Docker Repository</${Link}></p>
      </${Empty}>
    </section>`;
  }
  const current = SECTIONS.find(([key]) => key === search.get("section")) || SECTIONS[0];
  return html`<section class="page admin">
    <header class="page-head">
      <div>
        <h1>Admin</h1>
        <p class="muted">Users of this Dockyard, and what they did.</p>
      </div>
    </header>
    <${SectionNav} label="Admin sections" base="/admin" current=${current[0]} sections=${SECTIONS} />
    <div class="settings-panel">
      <h2><${Icon} name=${current[2]} />${current[1]}</h2>
      ${current[0] === "audit" ? html`<${AuditLog} />` : html`<${Users} />`}
    </div>
  </section>`;
}
