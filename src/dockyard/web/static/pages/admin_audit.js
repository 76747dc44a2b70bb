// The audit log for admins: newest first, filtered by user, action, workspace and a time
// range (all in the address, so a filtered view can be bookmarked), paged backwards by id.
import { useEffect, useState } from "preact/hooks";
import { get, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { navigate, useLocation } from "../lib/router.js";
import { when } from "../lib/format.js";
import { Button, Empty, ErrorNote, Field, Spinner, useLoad } from "../components/ui.js";

const LIMIT = 50;
const FILTERS = ["actor", "action", "workspace", "from", "to"];
// Suggestions only: any action name may be typed.
const ACTIONS = [
  "access_request.create", "access_request.approve", "access_request.reject", "access_request.cancel",
  "grant.create", "grant.revoke", "image.download", "login.failed", "login.locked", "manifest.push",
  "manifest.delete", "member.set", "member.remove", "repository.visibility", "repository.team_role",
  "robot.create", "robot.delete", "robot.disable", "robot.enable", "robot.permission", "robot.token.create",
  "robot.token.revoke", "tag.delete", "team.create", "team.delete", "team.role", "team.member.add",
  "team.member.remove", "token.create", "token.revoke", "upstream_credentials.set", "upstream_credentials.remove",
  "user.create", "user.update", "workspace.create", "workspace.update", "workspace.delete",
];

// "2024-05-01T13:30" (the browser's local time) as seconds since the epoch.
const seconds = (local) => (local ? Math.floor(new Date(local).getTime() / 1000) : undefined);

function detailText(detail) {
  return Object.entries(detail)
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" · ");
}

function Filters({ params }) {
  const [form, setForm] = useState(params);
  useEffect(() => setForm(params), [FILTERS.map((key) => params[key]).join("\n")]);
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const apply = (values) => navigate(`/admin${query({ section: "audit", ...values })}`);
  return html`<form class="audit-filters" role="search" aria-label="Filter the audit log" onSubmit=${(e) => {
    e.preventDefault();
    apply(Object.fromEntries(FILTERS.map((key) => [key, form[key].trim()])));
  }}>
    <${Field} id="audit-actor" label="User">
      <input id="audit-actor" value=${form.actor} placeholder="any" autocomplete="off" onInput=${set("actor")} />
    </${Field}>
    <${Field} id="audit-action" label="Action">
      <input id="audit-action" list="audit-actions" value=${form.action} placeholder="any" autocomplete="off" onInput=${set("action")} />
      <datalist id="audit-actions">${ACTIONS.map((a) => html`<option value=${a} />`)}</datalist>
    </${Field}>
    <${Field} id="audit-workspace" label="Workspace">
      <input id="audit-workspace" value=${form.workspace} placeholder="any" autocomplete="off" onInput=${set("workspace")} />
    </${Field}>
    <${Field} id="audit-from" label="From (local time)">
      <input id="audit-from" type="datetime-local" value=${form.from} onInput=${set("from")} />
    </${Field}>
    <${Field} id="audit-to" label="Until (local time)">
      <input id="audit-to" type="datetime-local" value=${form.to} onInput=${set("to")} />
    </${Field}>
    <div class="row">
      <${Button} kind="primary" type="submit" icon="filter">Apply</${Button}>
      <${Button} onClick=${() => apply({})}>Clear</${Button}>
    </div>
  </form>`;
}

export function AuditLog() {
  const { query: search } = useLocation();
  const params = Object.fromEntries(FILTERS.map((key) => [key, search.get(key) || ""]));
  const filterKey = FILTERS.map((key) => params[key]).join("\n");
  // The ids the pages start below: [] is the newest page; "Older" pushes, "Newer" pops.
  // Kept with the filters they belong to, so that new filters start at the newest page.
  const [paging, setPaging] = useState({ filterKey, cursors: [] });
  const cursors = paging.filterKey === filterKey ? paging.cursors : [];
  const setCursors = (next) => setPaging({ filterKey, cursors: next });
  const before = cursors[cursors.length - 1];
  const page = useLoad(
    (signal) =>
      get(
        `/audit${query({
          actor: params.actor,
          action: params.action,
          workspace: params.workspace,
          since: seconds(params.from),
          until: seconds(params.to),
          before,
          limit: LIMIT + 1, // one more tells whether there is an older page
        })}`,
        { signal },
      ),
    [filterKey, before],
  );
  const rows = (page.data || []).slice(0, LIMIT);
  const older = (page.data || []).length > LIMIT;
  const filtered = FILTERS.some((key) => params[key]);
  return html`
    <${Filters} params=${params} />
    <${ErrorNote} error=${page.error} />
    ${page.loading && !page.data && html`<${Spinner} label="Loading the audit log…" />`}
    ${page.data && rows.length === 0 &&
    html`<${Empty} title=${filtered ? "No event matches these filters" : "No events yet"} icon="file" />`}
    ${rows.length > 0 &&
    html`<div class="table-wrap" aria-busy=${page.loading ? "true" : "false"}><table class="data audit">
      <caption class="visually-hidden">Audit events, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">Action</th><th scope="col">Workspace</th>
        <th scope="col">Target</th><th scope="col">From</th><th scope="col">Details</th></tr></thead>
      <tbody>
        ${rows.map(
          (e) => html`<tr key=${e.id}>
            <td class="nowrap">${when(e.at)}</td>
            <td>${e.actor_name || html`<span class="muted">${e.actor_kind}</span>`}${e.actor_kind === "robot" && html` <span class="muted">(robot)</span>`}</td>
            <td><code>${e.action}</code></td>
            <td>${e.workspace || (e.workspace_id ? html`<span class="muted">deleted</span>` : html`<span class="muted">—</span>`)}</td>
            <td>${e.target}</td>
            <td>${e.client_ip || html`<span class="muted">—</span>`}</td>
            <td class="detail">${detailText(e.detail)}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>`}
    ${(rows.length > 0 || cursors.length > 0) &&
    html`<nav class="pager" aria-label="Audit pages">
      <span>${cursors.length === 0 ? "Newest events" : `Page ${cursors.length + 1}`}</span>
      <${Button} disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</${Button}>
      <${Button} disabled=${!older} onClick=${() => setCursors([...cursors, rows[rows.length - 1].id])}>Older</${Button}>
    </nav>`}`;
}
