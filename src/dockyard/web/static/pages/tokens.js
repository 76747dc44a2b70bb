// The signed-in user's personal access tokens: for the CLI, scripts and `docker login`.
// A new token's secret is shown once.
import { useState } from "preact/hooks";
import { del, get, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { ago, when } from "../lib/format.js";
import { Button, CopyText, Dialog, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";

const SCOPES = [
  ["pull", "Pull images"],
  ["push", "Push images"],
  ["delete", "Delete images"],
  ["api", "Use the API and the CLI"],
];

function NewToken({ onClose, onCreated }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState(new Set(["pull", "push", "api"]));
  const [days, setDays] = useState("90");
  const [created, setCreated] = useState(null);
  const [create, busy, error] = useAction(async () => {
    const token = await post("/user/tokens", {
      name: name.trim(),
      scopes: [...scopes],
      expires_in_days: days ? Number(days) : undefined,
    });
    setCreated(token);
    onCreated();
  });
  const flip = (scope) => {
    const next = new Set(scopes);
    if (next.has(scope)) next.delete(scope);
    else next.add(scope);
    setScopes(next);
  };
  if (created) {
    return html`<${Dialog} title="Token created" onClose=${onClose}>
      <p>Copy the token now: it is not shown again.</p>
      <${CopyText} text=${created.secret} label="token" />
      <p class="hint">Use it as the password of <code>docker login ${location.host}</code> or in <code>dockyard login</code>.</p>
      <div class="actions"><${Button} kind="primary" onClick=${onClose}>Done</${Button}></div>
    </${Dialog}>`;
  }
  const fields = error?.fields || {};
  return html`<${Dialog} title="New access token" onClose=${onClose}>
    <form onSubmit=${(e) => {
      e.preventDefault();
      create();
    }} novalidate>
      <${Field} id="token-name" label="Name" hint="Where it is used, e.g. laptop or ci" error=${fields.name}>
        <input id="token-name" value=${name} onInput=${(e) => setName(e.target.value)} autofocus />
      </${Field}>
      <fieldset class="checks">
        <legend>Allowed to</legend>
        ${SCOPES.map(
          ([scope, label]) => html`<label><input type="checkbox" checked=${scopes.has(scope)} onChange=${() => flip(scope)} />${label}</label>`,
        )}
      </fieldset>
      <${Field} id="token-days" label="Expires after (days)" hint="Leave empty for a token that does not expire" error=${fields.expires_in_days}>
        <input id="token-days" type="number" min="1" max="3650" value=${days} onInput=${(e) => setDays(e.target.value)} />
      </${Field}>
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" busy=${busy} disabled=${!name.trim() || scopes.size === 0}>Create token</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}

function RevokeButton({ token, onRevoked }) {
  const [revoke, busy, error] = useAction(async () => {
    await del(`/user/tokens/${token.id}`);
    onRevoked();
  });
  return html`<${Button} kind="ghost" icon="trash" busy=${busy} onClick=${() => revoke()} aria-label=${`Revoke ${token.name}`}>Revoke</${Button}>
    ${error && html`<small class="reason" role="alert">${error.message}</small>`}`;
}

export function TokensPage() {
  const tokens = useLoad((signal) => get("/user/tokens", { signal }), []);
  const [creating, setCreating] = useState(false);
  const live = (tokens.data || []).filter((t) => !t.revoked);
  return html`<section class="page">
    <header class="page-head">
      <div>
        <h1>Access tokens</h1>
        <p class="muted">For the CLI, scripts and <code>docker login</code>. Your browser sessions are listed too.</p>
      </div>
      <${Button} kind="primary" icon="plus" onClick=${() => setCreating(true)}>New token</${Button}>
    </header>
    <${ErrorNote} error=${tokens.error} />
    ${tokens.loading && !tokens.data && html`<${Spinner} />`}
    ${tokens.data && live.length === 0 && html`<${Empty} title="No tokens" icon="key"><p>Create one to use the CLI or docker login.</p></${Empty}>`}
    ${live.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Your access tokens</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Allowed to</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${live.map(
          (t) => html`<tr key=${t.id}><td>${t.name} <code class="muted">${t.prefix}…</code></td><td>${t.scopes.join(", ")}</td>
            <td>${when(t.created_at)}</td><td>${t.expires_at ? when(t.expires_at) : "never"}</td><td>${ago(t.last_used_at)}</td>
            <td><${RevokeButton} token=${t} onRevoked=${tokens.reload} /></td></tr>`,
        )}
      </tbody>
    </table></div>`}
    ${creating && html`<${NewToken} onClose=${() => setCreating(false)} onCreated=${tokens.reload} />`}
  </section>`;
}
