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
    await del(wsPath(workspace, `/registries/${encodeURIComponent(credential.registry)}`));
    setDeleting(false);
    onDeleted();
  });
  return html`<tr>
    <td><code>${credential.registry}</code></td>
    <td>${KIND_LABELS[credential.settings.kind] || credential.settings.kind}</td>
    <td>${transport(credential.settings)}</td>
    <td>${credential.username || html`<span class="muted">anonymous</span>`}</td>
    <td><span class="muted">${credential.username ? "kept, never shown" : "none"}</span></td>
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

const KIND_LABELS = {
  distribution: "Distribution API registry",
  dockerhub: "Docker Hub",
  quay: "Quay",
  gitlab: "GitLab",
  ghcr: "GitHub (GHCR)",
  ecr: "Amazon ECR",
  ngc: "NVIDIA NGC",
};

function transport(settings) {
  if (settings.plain_http) return "plain HTTP";
  if (!settings.tls_verify) return "HTTPS, certificate not checked";
  return settings.ca_bundle ? "HTTPS, private CA" : "HTTPS";
}

function SetCredentials({ workspace, onSaved }) {
  const empty = { registry: "", kind: "distribution", username: "", secret: "", tls_verify: true, ca_bundle: "", ecr_account: "", ecr_region: "" };
  const [form, setForm] = useState(empty);
  const [done, setDone] = useState(null);
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [save, busy, error] = useAction(async () => {
    const ecr = form.kind === "ecr";
    const stored = await put(wsPath(workspace, "/registries"), {
      ...form,
      registry: form.registry.trim(),
      username: form.username.trim(),
      ca_bundle: form.ca_bundle.trim() || null,
      ecr_account: ecr ? form.ecr_account.trim() || null : null,
      ecr_region: ecr ? form.ecr_region.trim() || null : null,
    });
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
    <${Field} id="cred-kind" label="Kind" error=${fields.kind}>
      <select id="cred-kind" value=${form.kind} onChange=${set("kind")}>
        ${Object.entries(KIND_LABELS).map(([value, label]) => html`<option value=${value}>${label}</option>`)}
      </select>
    </${Field}>
    ${form.kind === "ecr" &&
    html`<${Field} id="cred-ecr-account" label="AWS account id" hint="12 digits; default: from the host" error=${fields.ecr_account}>
        <input id="cred-ecr-account" value=${form.ecr_account} inputmode="numeric" maxlength="12" onInput=${set("ecr_account")} />
      </${Field}>
      <${Field} id="cred-ecr-region" label="AWS region" hint="default: from the host" error=${fields.ecr_region}>
        <input id="cred-ecr-region" value=${form.ecr_region} placeholder="us-west-2" maxlength="40" onInput=${set("ecr_region")} />
      </${Field}>`}
    <${Field} id="cred-username" label=${form.kind === "ecr" ? "Access key id" : "Username"} error=${fields.username}>
      <input id="cred-username" value=${form.username} autocomplete="off" onInput=${set("username")} />
    </${Field}>
    <${Field} id="cred-secret" label=${form.kind === "ecr" ? "Secret access key" : "Password or token"} error=${fields.secret}>
      <input id="cred-secret" type="password" value=${form.secret} autocomplete="new-password" onInput=${set("secret")} />
    </${Field}>
    <label class="check" for="cred-tls-verify">
      <input id="cred-tls-verify" type="checkbox" checked=${form.tls_verify}
        onChange=${(e) => setForm((old) => ({ ...old, tls_verify: e.target.checked }))} />
      Check the registry's TLS certificate</label>
    <${Field} id="cred-ca" label="CA bundle (PEM, optional)" hint="a private certificate authority to trust; 64 KiB at most" error=${fields.ca_bundle}>
      <textarea id="cred-ca" rows="3" maxlength="65536" value=${form.ca_bundle} placeholder="-----BEGIN CERTIFICATE-----" onInput=${set("ca_bundle")}></textarea>
    </${Field}>
    <${Button} kind="primary" type="submit" icon="lock" busy=${busy}
      disabled=${!form.registry.trim() || !form.username.trim() !== !form.secret}>Save credentials</${Button}>
    <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
    ${done && html`<p class="notice" role="status"><${Icon} name="ok" />Saved for <code>${done}</code>. The secret is stored encrypted and not shown again.</p>`}
  </form>`;
}

export function CredentialsSection({ workspace, role }) {
  const ws = workspace.name;
  const allowed = atLeast(role, "maintainer");
  const list = useLoad((signal) => (allowed ? get(wsPath(ws, "/registries"), { signal }) : Promise.resolve(null)), [ws, allowed]);
  if (!allowed) return html`<${Reason} id="credentials-why" text=${needs(role, "maintainer", "see and set registry credentials")} />`;
  return html`
    <p class="muted">Registry profiles: how Dockyard reaches other registries for this workspace (its kind, TLS and the
      credentials it signs in with to verify and inspect external images in private registries). Platform-wide profiles kept by
      administrators apply where the workspace has none. Saving a profile for a registry again replaces it.</p>
    <${ErrorNote} error=${list.error} />
    ${list.loading && !list.data && html`<${Spinner} label="Loading credentials…" />`}
    ${list.data && list.data.length === 0 && html`<${Empty} title="No registry credentials" icon="lock"><p>Public registries need none.</p></${Empty}>`}
    ${list.data &&
    list.data.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Registry credentials of ${ws}</caption>
      <thead><tr><th scope="col">Registry</th><th scope="col">Kind</th><th scope="col">Transport</th><th scope="col">Username</th>
        <th scope="col">Secret</th><th scope="col">Set</th>
        <th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${list.data.map((c) => html`<${CredentialRow} key=${c.registry} workspace=${ws} credential=${c} onDeleted=${list.reload} />`)}</tbody>
    </table></div>`}
    <h3 class="sub">Set credentials</h3>
    <${SetCredentials} workspace=${ws} onSaved=${list.reload} />`;
}
