// The signed-in user's personal access tokens: for the CLI, scripts and `docker login`.
// A new token's secret is shown once.
import { useState } from "preact/hooks";
import { del, get } from "../lib/api.js";
import { html } from "../lib/html.js";
import { NewTokenDialog } from "../components/new_token.js";
import { ago, when } from "../lib/format.js";
import { Button, Empty, ErrorNote, Spinner, useAction, useLoad } from "../components/ui.js";

const SCOPES = [
  ["pull", "Pull images"],
  ["push", "Push images"],
  ["delete", "Delete images"],
  ["api", "Use the API and the CLI"],
];

function NewToken({ onClose, onCreated }) {
  return html`<${NewTokenDialog} path="/user/tokens" title="New access token" createdTitle="Token created" idPrefix="token"
    nameHint="Where it is used, e.g. laptop or ci" choices=${SCOPES} initialScopes=${["pull", "push", "api"]} initialDays="90"
    secretLabel="token" onClose=${onClose} onCreated=${onCreated}
    usage=${html`Use it as the password of <code>docker login ${location.host}</code> or in <code>dockyard login</code>.`} />`;
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
