// Workspace settings: robot accounts (for CI and compute nodes), their roles and tokens.
// Maintainers see them; owners change them. A new token's secret is shown once.
import { useState } from "preact/hooks";
import { del, get, patch, post, put } from "../lib/api.js";
import { html } from "../lib/html.js";
import { NewTokenDialog } from "../components/new_token.js";
import { ago, when } from "../lib/format.js";
import { Button, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Confirm, DELEGATED_ROLES, InlineError, Reason, RoleSelect, Saved, atLeast, capital, needs, wsPath } from "./settings_common.js";

const enc = encodeURIComponent;
const SCOPES = [
  ["pull", "Pull images"],
  ["push", "Push images"],
  ["delete", "Delete images"],
];

function NewRobotToken({ workspace, robot, onClose, onCreated }) {
  return html`<${NewTokenDialog} path=${wsPath(workspace, `/robots/${enc(robot.name)}/tokens`)} title=${`New token for ${robot.login}`}
    createdTitle="Robot token created" idPrefix="robot-token" nameHint="Where it is used, e.g. ci or cluster" choices=${SCOPES}
    initialScopes=${["pull"]} initialDays="365" secretLabel="robot token" onClose=${onClose} onCreated=${onCreated}
    usage=${html`Sign in with <code>docker login ${location.host} -u ${robot.login}</code> and this token as the password.`} />`;
}

function RobotTokens({ workspace, robot, reason }) {
  const base = wsPath(workspace, `/robots/${enc(robot.name)}/tokens`);
  const tokens = useLoad((signal) => get(base, { signal }), [base]);
  const [creating, setCreating] = useState(false);
  const [revoke, , revokeError] = useAction(async (token) => {
    await del(`${base}/${token.id}`);
    tokens.reload();
  });
  const live = (tokens.data || []).filter((t) => !t.revoked);
  return html`<div class="robot-tokens">
    <div class="row row-between">
      <h4>Tokens</h4>
      <${Button} icon="plus" disabled=${Boolean(reason)} aria-describedby=${reason ? "robots-why" : undefined}
        aria-label=${`New token for ${robot.name}`} onClick=${() => setCreating(true)}>New token</${Button}>
    </div>
    <${ErrorNote} error=${tokens.error} />
    ${tokens.data && live.length === 0 && html`<p class="muted">No tokens: create one to sign in as this robot.</p>`}
    ${live.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Tokens of ${robot.login}</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Allowed to</th><th scope="col">Expires</th><th scope="col">Last used</th>
        <th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${live.map(
          (t) => html`<tr key=${t.id}><td>${t.name} <code class="muted">${t.prefix}…</code></td><td>${t.scopes.join(", ")}</td>
            <td>${t.expires_at ? when(t.expires_at) : "never"}</td><td>${ago(t.last_used_at)}</td>
            <td class="cell-actions"><${Button} kind="ghost" icon="trash" disabled=${Boolean(reason)} aria-describedby=${reason ? "robots-why" : undefined}
              aria-label=${`Revoke token ${t.name} of ${robot.name}`} onClick=${() => revoke(t)}>Revoke</${Button}></td></tr>`,
        )}
      </tbody>
    </table></div>`}
    <${InlineError} error=${revokeError} />
    ${creating && html`<${NewRobotToken} workspace=${workspace} robot=${robot} onClose=${() => setCreating(false)} onCreated=${tokens.reload} />`}
  </div>`;
}

function RobotRole({ workspace, robot, repositories, reason, onChanged }) {
  const [target, setTarget] = useState("");
  const held = robot.permissions.find(([repository]) => (repository || "") === target);
  const [saved, setSaved] = useState(false);
  const [set, busy, error] = useAction(async (role) => {
    setSaved(false);
    await put(wsPath(workspace, `/robots/${enc(robot.name)}/permissions`), { repository: target || null, role });
    setSaved(true);
    onChanged();
  });
  const describedBy = reason ? "robots-why" : undefined;
  return html`<div class="inline-form">
    <${Field} id=${`robot-target-${robot.name}`} label="Role on">
      <select id=${`robot-target-${robot.name}`} value=${target} onChange=${(e) => setTarget(e.target.value)}>
        <option value="">The whole workspace</option>
        ${repositories.map((r) => html`<option value=${r.name}>${r.name}</option>`)}
      </select>
    </${Field}>
    <${Field} id=${`robot-role-${robot.name}`} label="Role">
      <${RoleSelect} id=${`robot-role-${robot.name}`} value=${held ? held[1] : ""} roles=${DELEGATED_ROLES} none="None"
        disabled=${Boolean(reason) || busy} describedBy=${describedBy} onChange=${(role) => set(role)} />
    </${Field}>
    <${Saved} when=${saved && !busy} />
    <${InlineError} error=${error} />
  </div>`;
}

function RobotCard({ workspace, robot, repositories, reason, reload }) {
  const [deleting, setDeleting] = useState(false);
  const base = wsPath(workspace, `/robots/${enc(robot.name)}`);
  const describedBy = reason ? "robots-why" : undefined;
  const [toggle, toggling, toggleError] = useAction(async () => {
    await patch(base, { disabled: !robot.disabled });
    reload();
  });
  const [remove, removing, removeError] = useAction(async () => {
    await del(base);
    setDeleting(false);
    reload();
  });
  return html`<article class="card robot" aria-labelledby=${`robot-${robot.name}`}>
    <header class="card-head">
      <div>
        <h3 id=${`robot-${robot.name}`}>${robot.name} ${robot.disabled && html`<span class="badge badge-bad">Disabled</span>`}</h3>
        ${robot.description && html`<p class="muted">${robot.description}</p>`}
      </div>
      <div class="row">
        <${Button} busy=${toggling} disabled=${Boolean(reason)} aria-describedby=${describedBy} onClick=${() => toggle()}
          aria-label=${`${robot.disabled ? "Enable" : "Disable"} ${robot.name}`}>${robot.disabled ? "Enable" : "Disable"}</${Button}>
        <${Button} kind="ghost" icon="trash" disabled=${Boolean(reason)} aria-describedby=${describedBy}
          aria-label=${`Delete robot ${robot.name}`} onClick=${() => setDeleting(true)}>Delete</${Button}>
      </div>
    </header>
    <${InlineError} error=${toggleError} />
    <dl class="facts">
      <dt>Username</dt><dd><code>${robot.login}</code></dd>
      <dt>Roles</dt>
      <dd>${robot.permissions.length === 0
        ? html`<span class="muted">none yet: it can do nothing</span>`
        : robot.permissions.map(([repository, role], i) => html`${i ? ", " : ""}${capital(role)} on ${repository ? html`<code>${repository}</code>` : "the whole workspace"}`)}</dd>
      <dt>Created</dt><dd>${when(robot.created_at)}</dd>
    </dl>
    <${RobotRole} workspace=${workspace} robot=${robot} repositories=${repositories} reason=${reason} onChanged=${reload} />
    <${RobotTokens} workspace=${workspace} robot=${robot} reason=${reason} />
    ${deleting &&
    html`<${Confirm} title=${`Delete robot ${robot.name}?`} label="Delete robot" action=${remove} busy=${removing} error=${removeError}
      onClose=${() => setDeleting(false)}>
      <p>Its tokens stop working at once.</p>
    </${Confirm}>`}
  </article>`;
}

function NewRobot({ workspace, reason, onCreated }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [create, busy, error] = useAction(async () => {
    await post(wsPath(workspace, "/robots"), { name: name.trim(), description });
    setName("");
    setDescription("");
    onCreated();
  });
  const describedBy = reason ? "robots-why" : undefined;
  return html`<form class="inline-form" aria-label="Create a robot account" onSubmit=${(e) => {
    e.preventDefault();
    create();
  }}>
    <${Field} id="robot-name" label="Robot name" error=${error?.fields?.name}>
      <input id="robot-name" value=${name} disabled=${Boolean(reason)} aria-describedby=${describedBy} autocomplete="off"
        onInput=${(e) => setName(e.target.value)} />
    </${Field}>
    <${Field} id="robot-description" label="Description">
      <input id="robot-description" value=${description} disabled=${Boolean(reason)} aria-describedby=${describedBy}
        onInput=${(e) => setDescription(e.target.value)} />
    </${Field}>
    <${Button} kind="primary" type="submit" icon="plus" busy=${busy} disabled=${Boolean(reason) || !name.trim()}
      aria-describedby=${describedBy}>Create robot</${Button}>
    <${ErrorNote} error=${error?.fields?.name ? null : error} />
  </form>`;
}

export function RobotsSection({ workspace, role }) {
  const ws = workspace.name;
  const visible = atLeast(role, "maintainer");
  const robots = useLoad((signal) => (visible ? get(wsPath(ws, "/robots"), { signal }) : Promise.resolve(null)), [ws, visible]);
  const repositories = useLoad(
    (signal) => (visible ? get(`/repositories?workspace=${enc(ws)}&limit=1000`, { signal }) : Promise.resolve([])),
    [ws, visible],
  );
  const reason = needs(role, "owner", "create, change and delete robot accounts and their tokens");
  if (!visible) return html`<${Reason} id="robots-why" text=${needs(role, "maintainer", "see robot accounts")} />`;
  return html`
    <p class="muted">Robots sign in to the registry as <code>${ws}+NAME</code> with one of their tokens: for CI and compute nodes.</p>
    <${Reason} id="robots-why" text=${reason} />
    <${ErrorNote} error=${robots.error} />
    ${robots.loading && !robots.data && html`<${Spinner} label="Loading robot accounts…" />`}
    ${robots.data && robots.data.length === 0 && html`<${Empty} title="No robot accounts yet" icon="key"><p>Create one below.</p></${Empty}>`}
    <div class="cards">
      ${(robots.data || []).map(
        (r) => html`<${RobotCard} key=${r.name} workspace=${ws} robot=${r} repositories=${repositories.data || []} reason=${reason} reload=${robots.reload} />`,
      )}
    </div>
    <h3 class="sub">Create a robot account</h3>
    <${NewRobot} workspace=${ws} reason=${reason} onCreated=${robots.reload} />`;
}
