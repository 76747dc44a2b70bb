// Workspace settings: webhooks. Maintainers add receivers (a URL and the events it wants), test
// them, switch them off, remove them and read each one's delivery log with the receiver's
// status codes. The signing secret is shown once, when a webhook is added or its secret rotated
// (the old secret keeps signing beside the new one for the grace hours chosen).
import { useState } from "preact/hooks";
import { del, get, patch, post, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { when } from "../lib/format.js";
import { Button, CopyText, Dialog, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Confirm, InlineError, Reason, needs, wsPath } from "./settings_common.js";

const EVENTS = [
  ["image.pushed", "Image pushed"],
  ["image.deleted", "Manifest deleted"],
  ["tag.deleted", "Tag deleted"],
  ["version.deleted", "Version deleted"],
  ["repository.deleted", "Image or repository deleted"],
  ["build.started", "Build started"],
  ["build.finished", "Build finished"],
  ["import.finished", "Archive import finished"],
  ["access.requested", "Access requested"],
  ["access.approved", "Access approved"],
  ["retention.run", "Retention run"],
];
const PAGE = 20;

const outcome = (d) => (d.status_code != null ? String(d.status_code) : d.error || "—");
const STATE = { delivered: "badge-ok", failed: "badge-bad", pending: "badge-warn" };

function Deliveries({ base }) {
  const [before, setBefore] = useState(null);
  const log = useLoad((signal) => get(`${base}/deliveries${query({ limit: PAGE, before: before ?? undefined })}`, { signal }), [base, before]);
  const rows = log.data || [];
  return html`<div class="webhook-log">
    <div class="row row-between">
      <h4>Deliveries${before ? " (older)" : ""}</h4>
      <div class="row">
        ${before && html`<${Button} kind="ghost" onClick=${() => setBefore(null)}>Newest</${Button}>`}
        <${Button} kind="ghost" icon="refresh" onClick=${log.reload}>Refresh</${Button}>
      </div>
    </div>
    <${ErrorNote} error=${log.error} />
    ${log.loading && !log.data && html`<${Spinner} label="Loading deliveries…" />`}
    ${log.data && rows.length === 0 && html`<p class="muted">No deliveries yet.</p>`}
    ${rows.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Deliveries, newest first</caption>
      <thead><tr><th scope="col">Event</th><th scope="col">Subject</th><th scope="col">State</th><th scope="col">Status</th>
        <th scope="col">Attempts</th><th scope="col">Time</th><th scope="col">Last try</th></tr></thead>
      <tbody>
        ${rows.map(
          (d) => html`<tr key=${d.id}><td>${d.type.replace("org.dockyard.", "")}</td><td><code>${d.subject}</code></td>
            <td><span class=${`badge ${STATE[d.state] || "badge-muted"}`}>${d.state}</span></td><td>${outcome(d)}</td>
            <td>${d.attempts}</td><td>${d.duration_ms != null ? `${d.duration_ms} ms` : "—"}</td>
            <td>${d.last_attempt_at ? when(d.last_attempt_at) : "not yet"}</td></tr>`,
        )}
      </tbody>
    </table></div>`}
    ${rows.length === PAGE && html`<${Button} kind="ghost" onClick=${() => setBefore(rows[rows.length - 1].id)}>Older deliveries</${Button}>`}
  </div>`;
}

// The new signing secret, shown once (after adding a webhook, or rotating its secret).
function SecretShown({ title, hook, onClose }) {
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>Copy the signing secret now: it is not shown again.</p>
    <${CopyText} text=${hook.secret} label="signing secret" />
    ${hook.previous_secret_until &&
    html`<p>Until ${when(hook.previous_secret_until)} each event is signed with the old secret too: give the receiver the
      new one before then.</p>`}
    <p class="hint">Each event carries <code>webhook-id</code>, <code>webhook-timestamp</code> and <code>webhook-signature</code>
      headers (Standard Webhooks): check the signature with this secret before trusting the event.</p>
    <div class="actions"><${Button} kind="primary" onClick=${onClose}>Done</${Button}></div>
  </${Dialog}>`;
}

function RotateSecret({ base, label, onDone, onClose }) {
  const [hours, setHours] = useState("24");
  const [rotate, busy, error] = useAction(async () => onDone(await post(`${base}/rotate-secret`, { grace_hours: Number(hours) })));
  return html`<${Dialog} title="Rotate the signing secret?" onClose=${onClose}>
    <p>${label} gets a new signing secret. Events go on being signed with the old one too for the hours you choose,
      so the receiver can switch without refusing an event.</p>
    <${Field} id="rotate-grace" label="Hours the old secret keeps signing (0 to 168)" error=${error?.fields?.grace_hours}>
      <input id="rotate-grace" type="number" min="0" max="168" step="1" value=${hours} onInput=${(e) => setHours(e.target.value)} />
    </${Field}>
    <${ErrorNote} error=${error?.fields?.grace_hours ? null : error} />
    <div class="actions">
      <${Button} onClick=${onClose}>Cancel</${Button}>
      <${Button} kind="primary" icon="refresh" busy=${busy} onClick=${() => rotate()}>Rotate secret</${Button}>
    </div>
  </${Dialog}>`;
}

function WebhookCard({ workspace, hook, reload }) {
  const base = wsPath(workspace, `/webhooks/${hook.id}`);
  const [removing, setRemoving] = useState(false);
  const [showLog, setShowLog] = useState(false);
  const [tested, setTested] = useState(null);
  const [rotating, setRotating] = useState(false);
  const [rotated, setRotated] = useState(null);
  const [send, sending, sendError] = useAction(async () => {
    setTested(null);
    setTested(await post(`${base}/test`));
  });
  const [toggle, toggling, toggleError] = useAction(async () => {
    await patch(base, { enabled: !hook.enabled });
    reload();
  });
  const [remove, busy, removeError] = useAction(async () => {
    await del(base);
    setRemoving(false);
    reload();
  });
  const label = hook.description || hook.url;
  return html`<article class="card" aria-labelledby=${`webhook-${hook.id}`}>
    <header class="card-head">
      <div>
        <h3 id=${`webhook-${hook.id}`}><code>${hook.url}</code> ${!hook.enabled && html`<span class="badge badge-bad">Disabled</span>`}</h3>
        ${hook.description && html`<p class="muted">${hook.description}</p>`}
      </div>
      <div class="row">
        <${Button} icon="play" busy=${sending} aria-label=${`Test ${label}`} onClick=${() => send()}>Test</${Button}>
        <${Button} busy=${toggling} aria-label=${`${hook.enabled ? "Disable" : "Enable"} ${label}`} onClick=${() => toggle()}>
          ${hook.enabled ? "Disable" : "Enable"}</${Button}>
        <${Button} aria-label=${`Rotate secret of ${label}`} onClick=${() => setRotating(true)}>Rotate secret</${Button}>
        <${Button} kind="ghost" icon="trash" aria-label=${`Remove ${label}`} onClick=${() => setRemoving(true)}>Remove</${Button}>
      </div>
    </header>
    <${InlineError} error=${sendError || toggleError} />
    ${tested &&
    html`<p class=${tested.state === "delivered" ? "notice" : "reason-note"} role="status">
      <${Icon} name=${tested.state === "delivered" ? "ok" : "fail"} />
      ${tested.state === "delivered" ? `Test delivered: the receiver answered ${tested.status_code} in ${tested.duration_ms} ms.` : `Test not delivered: ${outcome(tested)}.`}
    </p>`}
    <dl class="facts">
      <dt>Events</dt><dd>${hook.events.length ? hook.events.join(", ") : "all events"}</dd>
      <dt>Added</dt><dd>${when(hook.created_at)} by ${hook.created_by}</dd>
      ${hook.secret_rotated_at &&
      html`<dt>Secret rotated</dt><dd>${when(hook.secret_rotated_at)}${hook.previous_secret_until &&
        ` (the old secret signs too until ${when(hook.previous_secret_until)})`}</dd>`}
    </dl>
    <${Button} kind="ghost" aria-expanded=${showLog} onClick=${() => setShowLog(!showLog)}>${showLog ? "Hide deliveries" : "Show deliveries"}</${Button}>
    ${showLog && html`<${Deliveries} base=${base} />`}
    ${rotating &&
    html`<${RotateSecret} base=${base} label=${label} onClose=${() => setRotating(false)} onDone=${(next) => {
      setRotating(false);
      setRotated(next);
      reload();
    }} />`}
    ${rotated && html`<${SecretShown} title="New signing secret" hook=${rotated} onClose=${() => setRotated(null)} />`}
    ${removing &&
    html`<${Confirm} title="Remove this webhook?" label="Remove webhook" action=${remove} busy=${busy} error=${removeError}
      onClose=${() => setRemoving(false)}>
      <p><code>${hook.url}</code> gets no more events, and its delivery log goes.</p>
    </${Confirm}>`}
  </article>`;
}

function NewWebhook({ workspace, onCreated }) {
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState(new Set());
  const [created, setCreated] = useState(null);
  const [create, busy, error] = useAction(async () => {
    const hook = await post(wsPath(workspace, "/webhooks"), { url: url.trim(), description, events: [...events] });
    setUrl("");
    setDescription("");
    setEvents(new Set());
    setCreated(hook);
    onCreated();
  });
  const flip = (name) => {
    const next = new Set(events);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    setEvents(next);
  };
  const urlError = error?.fields?.url || (error?.message?.includes("URL") ? error.message : null);
  return html`<form aria-label="Add a webhook" onSubmit=${(e) => {
    e.preventDefault();
    create();
  }}>
    <${Field} id="webhook-url" label="Receiver URL" hint="http:// or https://; receivers on private or loopback addresses need an administrator's permission"
      error=${urlError}>
      <input id="webhook-url" type="url" value=${url} autocomplete="off" onInput=${(e) => setUrl(e.target.value)} />
    </${Field}>
    <${Field} id="webhook-description" label="Description">
      <input id="webhook-description" value=${description} onInput=${(e) => setDescription(e.target.value)} />
    </${Field}>
    <fieldset class="checks">
      <legend>Events (none chosen: all)</legend>
      ${EVENTS.map(([name, text]) => html`<label><input type="checkbox" checked=${events.has(name)} onChange=${() => flip(name)} />${text}</label>`)}
    </fieldset>
    <${ErrorNote} error=${urlError ? null : error} />
    <${Button} kind="primary" type="submit" icon="plus" busy=${busy} disabled=${!url.trim()}>Add webhook</${Button}>
    ${created && html`<${SecretShown} title="Webhook added" hook=${created} onClose=${() => setCreated(null)} />`}
  </form>`;
}

export function WebhooksSection({ workspace, role }) {
  const ws = workspace.name;
  const reason = needs(role, "maintainer", "see and manage webhooks");
  const hooks = useLoad((signal) => (reason ? Promise.resolve(null) : get(wsPath(ws, "/webhooks"), { signal })), [ws, reason]);
  if (reason) return html`<${Reason} id="webhooks-why" text=${reason} />`;
  return html`
    <p class="muted">Webhooks tell other systems (CI, pipelines, chat) what happens in this workspace: each event is POSTed as a
      signed CloudEvent, retried until the receiver accepts it, in order for each repository.</p>
    <${ErrorNote} error=${hooks.error} />
    ${hooks.loading && !hooks.data && html`<${Spinner} label="Loading webhooks…" />`}
    ${hooks.data && hooks.data.length === 0 && html`<${Empty} title="No webhooks yet" icon="bell"><p>Add one below.</p></${Empty}>`}
    <div class="cards">
      ${(hooks.data || []).map((h) => html`<${WebhookCard} key=${h.id} workspace=${ws} hook=${h} reload=${hooks.reload} />`)}
    </div>
    <h3 class="sub">Add a webhook</h3>
    <${NewWebhook} workspace=${ws} onCreated=${hooks.reload} />`;
}
