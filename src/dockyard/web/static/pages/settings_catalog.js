// Workspace settings: the catalog policy (every version must run on linux/amd64) and the
// credentials Dockyard uses for other registries. Secrets go in and never come back out.
import { useState } from "preact/hooks";
import { del, get, put } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { when } from "../lib/format.js";
import { Button, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Confirm, Reason, atLeast, needs, wsPath } from "./settings_common.js";

export function PolicySection({ workspace, role }) {
  const ws = workspace.name;
  const policy = useLoad((signal) => get(wsPath(ws, "/catalog-policy"), { signal }), [ws]);
  const [saved, setSaved] = useState(null);
  const [chosen, setChosen] = useState(null); // shown while the server is asked
  const [save, busy, error] = useAction(async (require_amd64) => {
    setChosen(require_amd64);
    setSaved(null);
    try {
      const answer = await put(wsPath(ws, "/catalog-policy"), { require_amd64 });
      setSaved(answer.require_amd64);
      policy.reload();
    } finally {
      setChosen(null);
    }
  });
  const reason = needs(role, "owner", "change the catalog policy");
  return html`
    <p class="muted">Compute nodes run linux/amd64. With this policy, a version that does not offer that platform is refused
      when it is added, instead of failing later on a node.</p>
    <${Reason} id="policy-why" text=${reason} />
    <${ErrorNote} error=${policy.error || error} />
    ${policy.loading && !policy.data && html`<${Spinner} label="Loading the policy…" />`}
    ${policy.data &&
    html`<label class="switch">
      <input type="checkbox" checked=${chosen ?? saved ?? policy.data.require_amd64} disabled=${Boolean(reason) || busy}
        aria-describedby=${reason ? "policy-why" : undefined} onChange=${(e) => save(e.target.checked)} />
      <span>Require <code>linux/amd64</code> in every new version</span>
    </label>`}
    ${saved !== null &&
    html`<p class="notice" role="status"><${Icon} name="ok" />Saved: ${saved ? "versions without linux/amd64 are refused" : "any platform is accepted"}.</p>`}`;
}

function CredentialRow({ workspace, credential, onDeleted }) {
  const [deleting, setDeleting] = useState(false);
  const [remove, busy, error] = useAction(async () => {
    await del(wsPath(workspace, `/upstream-credentials/${encodeURIComponent(credential.registry)}`));
    setDeleting(false);
    onDeleted();
  });
  return html`<tr>
    <td><code>${credential.registry}</code></td>
    <td>${credential.username}</td>
    <td><span class="muted">kept, never shown</span></td>
    <td>${when(credential.created_at)} by ${credential.created_by}</td>
    <td class="cell-actions">
      <${Button} kind="ghost" icon="trash" aria-label=${`Delete the credentials for ${credential.registry}`}
        onClick=${() => setDeleting(true)}>Delete</${Button}>
      ${deleting &&
      html`<${Confirm} title=${`Forget the credentials for ${credential.registry}?`} label="Delete" action=${remove} busy=${busy}
        error=${error} onClose=${() => setDeleting(false)}>
        <p>Private images there can no longer be verified or inspected until new credentials are set.</p>
      </${Confirm}>`}
    </td>
  </tr>`;
}

function SetCredentials({ workspace, onSaved }) {
  const empty = { registry: "", username: "", secret: "" };
  const [form, setForm] = useState(empty);
  const [done, setDone] = useState(null);
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [save, busy, error] = useAction(async () => {
    const stored = await put(wsPath(workspace, "/upstream-credentials"), { ...form, registry: form.registry.trim(), username: form.username.trim() });
    setForm(empty); // the secret leaves the page as soon as the server has it
    setDone(stored.registry);
    onSaved();
  });
  const fields = error?.fields || {};
  return html`<form class="inline-form" aria-label="Set credentials for a registry" autocomplete="off" onSubmit=${(e) => {
    e.preventDefault();
    setDone(null);
    save();
  }}>
    <${Field} id="cred-registry" label="Registry" error=${fields.registry}>
      <input id="cred-registry" value=${form.registry} placeholder="quay.io" onInput=${set("registry")} />
    </${Field}>
    <${Field} id="cred-username" label="Username" error=${fields.username}>
      <input id="cred-username" value=${form.username} autocomplete="off" onInput=${set("username")} />
    </${Field}>
    <${Field} id="cred-secret" label="Password or token" error=${fields.secret}>
      <input id="cred-secret" type="password" value=${form.secret} autocomplete="new-password" onInput=${set("secret")} />
    </${Field}>
    <${Button} kind="primary" type="submit" icon="lock" busy=${busy}
      disabled=${!form.registry.trim() || !form.username.trim() || !form.secret}>Save credentials</${Button}>
    <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
    ${done && html`<p class="notice" role="status"><${Icon} name="ok" />Saved for <code>${done}</code>. The secret is stored encrypted and not shown again.</p>`}
  </form>`;
}

export function CredentialsSection({ workspace, role }) {
  const ws = workspace.name;
  const allowed = atLeast(role, "maintainer");
  const list = useLoad((signal) => (allowed ? get(wsPath(ws, "/upstream-credentials"), { signal }) : Promise.resolve(null)), [ws, allowed]);
  if (!allowed) return html`<${Reason} id="credentials-why" text=${needs(role, "maintainer", "see and set registry credentials")} />`;
  return html`
    <p class="muted">Dockyard signs in with these to verify and inspect the workspace's external images in private registries.
      Setting credentials for a registry again replaces them.</p>
    <${ErrorNote} error=${list.error} />
    ${list.loading && !list.data && html`<${Spinner} label="Loading credentials…" />`}
    ${list.data && list.data.length === 0 && html`<${Empty} title="No registry credentials" icon="lock"><p>Public registries need none.</p></${Empty}>`}
    ${list.data &&
    list.data.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Registry credentials of ${ws}</caption>
      <thead><tr><th scope="col">Registry</th><th scope="col">Username</th><th scope="col">Secret</th><th scope="col">Set</th>
        <th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${list.data.map((c) => html`<${CredentialRow} key=${c.registry} workspace=${ws} credential=${c} onDeleted=${list.reload} />`)}</tbody>
    </table></div>`}
    <h3 class="sub">Set credentials</h3>
    <${SetCredentials} workspace=${ws} onSaved=${list.reload} />`;
}
