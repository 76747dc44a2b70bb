// Workspace settings: members with their roles, and teams (members, workspace-wide role).
// Members see both lists; only owners change them (members may leave).
import { useState } from "preact/hooks";
import { del, get, post, put } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { useSession } from "../lib/session.js";
import { when } from "../lib/format.js";
import { Button, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Confirm, DELEGATED_ROLES, InlineError, Reason, RoleSelect, Saved, capital, needs, wsPath } from "./settings_common.js";

const enc = encodeURIComponent;

function AddMember({ workspace, reason, onAdded }) {
  const [username, setUsername] = useState("");
  const [role, setRole] = useState("reader");
  const [add, busy, error] = useAction(async () => {
    await put(wsPath(workspace, `/members/${enc(username.trim())}`), { role });
    setUsername("");
    onAdded();
  });
  return html`<form class="inline-form" aria-label="Add a member" onSubmit=${(e) => {
    e.preventDefault();
    add();
  }}>
    <${Field} id="member-username" label="Username">
      <input id="member-username" value=${username} disabled=${Boolean(reason)} aria-describedby=${reason ? "members-why" : undefined}
        autocomplete="off" onInput=${(e) => setUsername(e.target.value)} />
    </${Field}>
    <${Field} id="member-role" label="Role">
      <${RoleSelect} id="member-role" value=${role} onChange=${setRole} disabled=${Boolean(reason)} describedBy=${reason ? "members-why" : undefined} />
    </${Field}>
    <${Button} kind="primary" type="submit" icon="plus" busy=${busy} disabled=${Boolean(reason) || !username.trim()}
      aria-describedby=${reason ? "members-why" : undefined}>Add member</${Button}>
    <${ErrorNote} error=${error} />
  </form>`;
}

function MemberRow({ workspace, member, me, reason, reload, onLeft }) {
  const [removing, setRemoving] = useState(false);
  const [saved, setSaved] = useState(false);
  const [change, changing, changeError] = useAction(async (role) => {
    setSaved(false);
    await put(wsPath(workspace, `/members/${enc(member.username)}`), { role });
    setSaved(true);
    reload();
  });
  const [remove, busy, error] = useAction(async () => {
    await del(wsPath(workspace, `/members/${enc(member.username)}`));
    setRemoving(false);
    if (member.username === me) onLeft();
    else reload();
  });
  const own = member.username === me;
  return html`<tr>
    <td>${member.username}${own && html` <span class="muted">(you)</span>`}</td>
    <td>
      <${RoleSelect} id=${`role-${member.username}`} label=${`Role of ${member.username}`} value=${member.role}
        disabled=${Boolean(reason) || changing} describedBy=${reason ? "members-why" : undefined} onChange=${(role) => change(role)} />
      <${Saved} when=${saved && !changing} />
      <${InlineError} error=${changeError} />
    </td>
    <td>${when(member.since)}</td>
    <td class="cell-actions">
      ${own
        ? html`<${Button} kind="ghost" icon="signout" onClick=${() => setRemoving(true)}>Leave</${Button}>`
        : html`<${Button} kind="ghost" icon="trash" disabled=${Boolean(reason)} aria-describedby=${reason ? "members-why" : undefined}
            aria-label=${`Remove ${member.username}`} onClick=${() => setRemoving(true)}>Remove</${Button}>`}
      ${removing &&
      html`<${Confirm} title=${own ? `Leave ${workspace}?` : `Remove ${member.username}?`} label=${own ? "Leave" : "Remove"}
        action=${remove} busy=${busy} error=${error} onClose=${() => setRemoving(false)}>
        <p>${own ? "You lose the access your membership gives you; an owner can add you again." : `${member.username} loses the access this membership gives.`}</p>
      </${Confirm}>`}
    </td>
  </tr>`;
}

export function MembersSection({ workspace, role }) {
  const { user, refreshWorkspaces, setWorkspace } = useSession();
  const ws = workspace.name;
  const members = useLoad((signal) => get(wsPath(ws, "/members"), { signal }), [ws]);
  const reason = needs(role, "owner", "add, change and remove members");
  const left = async () => {
    await refreshWorkspaces();
    setWorkspace(user.username);
  };
  return html`
    <p class="muted">Readers pull, developers also push, maintainers also delete and answer access requests, owners also manage the workspace.</p>
    <${Reason} id="members-why" text=${reason} />
    <${ErrorNote} error=${members.error} />
    ${members.loading && !members.data && html`<${Spinner} label="Loading members…" />`}
    ${members.data &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Members of ${ws}</caption>
      <thead><tr><th scope="col">Member</th><th scope="col">Role</th><th scope="col">Since</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${members.data.map(
          (m) => html`<${MemberRow} key=${m.username} workspace=${ws} member=${m} me=${user.username} reason=${reason}
            reload=${members.reload} onLeft=${left} />`,
        )}
      </tbody>
    </table></div>`}
    <h3 class="sub">Add a member</h3>
    <${AddMember} workspace=${ws} reason=${reason} onAdded=${members.reload} />`;
}

function TeamCard({ workspace, team, reason, reload }) {
  const [newMember, setNewMember] = useState("");
  const [deleting, setDeleting] = useState(false);
  const base = wsPath(workspace, `/teams/${enc(team.name)}`);
  const describedBy = reason ? "teams-why" : undefined;
  const [roleSaved, setRoleSaved] = useState(false);
  const [setRole, settingRole, roleError] = useAction(async (role) => {
    setRoleSaved(false);
    await put(`${base}/role`, { role });
    setRoleSaved(true);
    reload();
  });
  const [addMember, adding, addError] = useAction(async () => {
    await put(`${base}/members/${enc(newMember.trim())}`);
    setNewMember("");
    reload();
  });
  const [removeMember, , removeError] = useAction(async (username) => {
    await del(`${base}/members/${enc(username)}`);
    reload();
  });
  const [remove, removing, deleteError] = useAction(async () => {
    await del(base);
    setDeleting(false);
    reload();
  });
  const wide = team.permissions.find(([repository]) => repository === null);
  const perRepository = team.permissions.filter(([repository]) => repository !== null);
  return html`<article class="card team" aria-labelledby=${`team-${team.name}`}>
    <header class="card-head">
      <div>
        <h3 id=${`team-${team.name}`}>${team.name}</h3>
        ${team.description && html`<p class="muted">${team.description}</p>`}
      </div>
      <${Button} kind="ghost" icon="trash" disabled=${Boolean(reason)} aria-describedby=${describedBy}
        aria-label=${`Delete team ${team.name}`} onClick=${() => setDeleting(true)}>Delete</${Button}>
    </header>
    <div class="field">
      <label for=${`team-role-${team.name}`}>Role on the whole workspace</label>
      <${RoleSelect} id=${`team-role-${team.name}`} value=${wide ? wide[1] : ""} roles=${DELEGATED_ROLES} none="None (repository roles only)"
        disabled=${Boolean(reason) || settingRole} describedBy=${describedBy} onChange=${(role) => setRole(role)} />
      <${Saved} when=${roleSaved && !settingRole} />
      <${InlineError} error=${roleError} />
    </div>
    ${perRepository.length > 0 &&
    html`<p class="muted">Repository roles: ${perRepository.map(([repository, r], i) => html`${i ? ", " : ""}<code>${repository}</code> ${capital(r)}`)}
      (set under Repositories).</p>`}
    <h4>Members</h4>
    ${team.members.length === 0 && html`<p class="muted">No members yet.</p>`}
    <ul class="chips" aria-label=${`Members of team ${team.name}`}>
      ${team.members.map(
        (username) => html`<li class="chip">${username}
          <button type="button" class="chip-remove" disabled=${Boolean(reason)} aria-describedby=${describedBy}
            aria-label=${`Remove ${username} from ${team.name}`} onClick=${() => removeMember(username)}><${Icon} name="close" size=${14} /></button></li>`,
      )}
    </ul>
    <${InlineError} error=${removeError} />
    <form class="inline-form" aria-label=${`Add a member to ${team.name}`} onSubmit=${(e) => {
      e.preventDefault();
      addMember();
    }}>
      <${Field} id=${`team-add-${team.name}`} label="Username">
        <input id=${`team-add-${team.name}`} value=${newMember} disabled=${Boolean(reason)} aria-describedby=${describedBy}
          autocomplete="off" onInput=${(e) => setNewMember(e.target.value)} />
      </${Field}>
      <${Button} type="submit" icon="plus" busy=${adding} disabled=${Boolean(reason) || !newMember.trim()}
        aria-label=${`Add to team ${team.name}`}>Add</${Button}>
      <${ErrorNote} error=${addError} />
    </form>
    ${deleting &&
    html`<${Confirm} title=${`Delete team ${team.name}?`} label="Delete team" action=${remove} busy=${removing} error=${deleteError}
      onClose=${() => setDeleting(false)}>
      <p>Its members lose the roles the team gives them; their own memberships stay.</p>
    </${Confirm}>`}
  </article>`;
}

function NewTeam({ workspace, reason, onCreated }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [create, busy, error] = useAction(async () => {
    await post(wsPath(workspace, "/teams"), { name: name.trim(), description });
    setName("");
    setDescription("");
    onCreated();
  });
  const describedBy = reason ? "teams-why" : undefined;
  return html`<form class="inline-form" aria-label="Create a team" onSubmit=${(e) => {
    e.preventDefault();
    create();
  }}>
    <${Field} id="team-name" label="Team name" error=${error?.fields?.name}>
      <input id="team-name" value=${name} disabled=${Boolean(reason)} aria-describedby=${describedBy} autocomplete="off"
        onInput=${(e) => setName(e.target.value)} />
    </${Field}>
    <${Field} id="team-description" label="Description">
      <input id="team-description" value=${description} disabled=${Boolean(reason)} aria-describedby=${describedBy}
        onInput=${(e) => setDescription(e.target.value)} />
    </${Field}>
    <${Button} kind="primary" type="submit" icon="plus" busy=${busy} disabled=${Boolean(reason) || !name.trim()}
      aria-describedby=${describedBy}>Create team</${Button}>
    <${ErrorNote} error=${error?.fields?.name ? null : error} />
  </form>`;
}

export function TeamsSection({ workspace, role }) {
  const ws = workspace.name;
  const teams = useLoad((signal) => get(wsPath(ws, "/teams"), { signal }), [ws]);
  const reason = needs(role, "owner", "create, change and delete teams");
  return html`
    <p class="muted">A team gives its members a role on the whole workspace or on single repositories.</p>
    <${Reason} id="teams-why" text=${reason} />
    <${ErrorNote} error=${teams.error} />
    ${teams.loading && !teams.data && html`<${Spinner} label="Loading teams…" />`}
    ${teams.data && teams.data.length === 0 && html`<${Empty} title="No teams yet" icon="layers"><p>Create one below.</p></${Empty}>`}
    <div class="cards cards-2">
      ${(teams.data || []).map((t) => html`<${TeamCard} key=${t.name} workspace=${ws} team=${t} reason=${reason} reload=${teams.reload} />`)}
    </div>
    <h3 class="sub">Create a team</h3>
    <${NewTeam} workspace=${ws} reason=${reason} onCreated=${teams.reload} />`;
}
