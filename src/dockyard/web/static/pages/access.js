// "Access": maintainers answer the access requests of their workspaces (approve for some
// days, or reject with a note); everyone sees their own requests (and may withdraw a pending
// one) and their notifications.
import { useState } from "preact/hooks";
import { get, imagePath, post, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { notificationsChanged } from "../lib/events.js";
import { Icon } from "../lib/icons.js";
import { Link } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { ago, when } from "../lib/format.js";
import { Button, Dialog, Empty, ErrorNote, Field, Spinner, StatusBadge, useAction, useLoad } from "../components/ui.js";

const MANAGERS = new Set(["maintainer", "owner"]);
const MAX_DAYS = 366;
const wants = (action) => (action === "push" ? "Pull and push" : "Pull");
const imageLink = (repository) => html`<${Link} href=${`/images/${imagePath(repository)}`}><code>${repository}</code></${Link}>`;

function Approve({ request, onClose, onDone }) {
  const [form, setForm] = useState({ action: request.action, days: "30", note: "" });
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [approve, busy, error] = useAction(async () => {
    const answer = await post(`/access-requests/${request.id}/approve`, {
      action: form.action,
      expires_in_days: Number(form.days),
      note: form.note,
    });
    onDone(answer.request);
  });
  const fields = error?.fields || {};
  return html`<${Dialog} title=${`Approve ${request.requester}'s request`} onClose=${onClose}>
    <form novalidate onSubmit=${(e) => {
      e.preventDefault();
      approve();
    }}>
      <p>${request.requester} asks for ${wants(request.action).toLowerCase()} on <code>${request.repository}</code>.</p>
      ${request.message && html`<blockquote class="request-message">${request.message}</blockquote>`}
      <div class="grid-2">
        <${Field} id="approve-action" label="Give">
          <select id="approve-action" value=${form.action} onChange=${set("action")}>
            <option value="pull">Pull</option>
            <option value="push">Pull and push</option>
          </select>
        </${Field}>
        <${Field} id="approve-days" label="For (days)" hint=${`Access ends by itself; at most ${MAX_DAYS} days.`} error=${fields.expires_in_days}>
          <input id="approve-days" type="number" min="1" max=${MAX_DAYS} required value=${form.days} onInput=${set("days")} autofocus />
        </${Field}>
      </div>
      <${Field} id="approve-note" label="Note to the requester (optional)" error=${fields.note}>
        <textarea id="approve-note" rows="2" value=${form.note} onInput=${set("note")}></textarea>
      </${Field}>
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" icon="ok" busy=${busy} disabled=${!form.days}>Approve</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}

function Reject({ request, onClose, onDone }) {
  const [note, setNote] = useState("");
  const [reject, busy, error] = useAction(async () => {
    onDone(await post(`/access-requests/${request.id}/reject`, { note }));
  });
  return html`<${Dialog} title=${`Reject ${request.requester}'s request`} onClose=${onClose}>
    <form novalidate onSubmit=${(e) => {
      e.preventDefault();
      reject();
    }}>
      <p>${request.requester} will not get ${wants(request.action).toLowerCase()} on <code>${request.repository}</code>, and is told so.</p>
      <${Field} id="reject-note" label="Why (the requester reads this)">
        <textarea id="reject-note" rows="3" value=${note} onInput=${(e) => setNote(e.target.value)} autofocus></textarea>
      </${Field}>
      <${ErrorNote} error=${error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="danger" type="submit" icon="fail" busy=${busy}>Reject</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}

function Decision({ request }) {
  if (request.status === "pending") return html`<span class="muted">waiting for a maintainer</span>`;
  if (request.status === "cancelled") return html`<span class="muted">withdrawn ${ago(request.decided_at)}</span>`;
  return html`<span>
    by ${request.decided_by || "—"}, ${ago(request.decided_at)}
    ${request.status === "approved" && request.grant_expires_at && html`<br />access until ${when(request.grant_expires_at)}`}
    ${request.decision_note && html`<br /><q>${request.decision_note}</q>`}
  </span>`;
}

function Queue({ managed, isAdmin }) {
  const [status, setStatus] = useState("pending");
  const [answering, setAnswering] = useState(null); // [request, "approve" | "reject"]
  const [answered, setAnswered] = useState(null);
  const queue = useLoad(
    async (signal) => {
      if (isAdmin) return get(`/access-requests${query({ status })}`, { signal });
      const lists = await Promise.all(managed.map((workspace) => get(`/access-requests${query({ workspace, status })}`, { signal })));
      return lists.flat().sort((a, b) => b.id - a.id);
    },
    [status, managed.join(",")],
  );
  const done = (request) => {
    setAnswering(null);
    setAnswered(request);
    queue.reload();
  };
  const rows = queue.data || [];
  return html`<section class="access-block" aria-labelledby="queue-title">
    <div class="row row-between">
      <h2 id="queue-title">Requests to answer</h2>
      <label class="filter filter-inline">
        <span>Show</span>
        <select value=${status} onChange=${(e) => setStatus(e.target.value)}>
          <option value="pending">Waiting for an answer</option>
          <option value="approved">Approved</option>
          <option value="rejected">Rejected</option>
          <option value="cancelled">Withdrawn</option>
          <option value="">All</option>
        </select>
      </label>
    </div>
    <p class="muted">For ${isAdmin ? "every workspace (you are an admin)" : `the workspaces you maintain: ${managed.join(", ")}`}.</p>
    ${answered &&
    html`<p class="notice" role="status"><${Icon} name="ok" />
      ${answered.status === "approved"
        ? html`Approved: ${answered.requester} may ${answered.action === "push" ? "pull and push" : "pull"} <code>${answered.repository}</code> until ${when(answered.grant_expires_at)}.`
        : html`Rejected ${answered.requester}'s request for <code>${answered.repository}</code>.`}</p>`}
    <${ErrorNote} error=${queue.error} />
    ${queue.loading && !queue.data && html`<${Spinner} label="Loading requests…" />`}
    ${queue.data && rows.length === 0 &&
    html`<p class="quiet-empty"><${Icon} name="ok" /><span><strong>${status === "pending" ? "No requests waiting." : "No requests."}</strong>
      When someone asks for access to a private image of your workspaces, it appears here.</span></p>`}
    ${rows.length > 0 &&
    html`<div class="table-wrap" aria-busy=${queue.loading ? "true" : "false"}><table class="data">
      <caption class="visually-hidden">Access requests to answer</caption>
      <thead><tr><th scope="col">Repository</th><th scope="col">From</th><th scope="col">Wants</th><th scope="col">Message</th>
        <th scope="col">Asked</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${rows.map(
          (r) => html`<tr key=${r.id}>
            <td><code>${r.repository}</code></td><td>${r.requester}</td><td>${wants(r.action)}</td>
            <td class="message">${r.message || html`<span class="muted">—</span>`}</td>
            <td><span title=${when(r.created_at)}>${ago(r.created_at)}</span></td>
            <td><${StatusBadge} status=${r.status} />${r.status !== "pending" && html`<div class="reason"><${Decision} request=${r} /></div>`}</td>
            <td class="cell-actions">${r.status === "pending" &&
            html`<div class="row">
              <${Button} kind="primary" icon="ok" aria-label=${`Approve ${r.requester} on ${r.repository}`} onClick=${() => setAnswering([r, "approve"])}>Approve</${Button}>
              <${Button} kind="secondary" icon="fail" aria-label=${`Reject ${r.requester} on ${r.repository}`} onClick=${() => setAnswering([r, "reject"])}>Reject</${Button}>
            </div>`}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>`}
    ${answering?.[1] === "approve" && html`<${Approve} request=${answering[0]} onClose=${() => setAnswering(null)} onDone=${done} />`}
    ${answering?.[1] === "reject" && html`<${Reject} request=${answering[0]} onClose=${() => setAnswering(null)} onDone=${done} />`}
  </section>`;
}

function MyRequests() {
  const mine = useLoad((signal) => get("/access-requests?mine=true", { signal }), []);
  const [cancel, , cancelError] = useAction(async (request) => {
    await post(`/access-requests/${request.id}/cancel`);
    mine.reload();
  });
  const rows = mine.data || [];
  return html`<section class="access-block" aria-labelledby="mine-title">
    <h2 id="mine-title">Your requests</h2>
    <${ErrorNote} error=${mine.error || cancelError} />
    ${mine.loading && !mine.data && html`<${Spinner} label="Loading your requests…" />`}
    ${mine.data && rows.length === 0 &&
    html`<${Empty} title="You have not asked for access" icon="key">
      <p>Open the page of a private image (its address is <code>/images/WORKSPACE/NAME</code>) and press Request access.</p></${Empty}>`}
    ${rows.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Your access requests</caption>
      <thead><tr><th scope="col">Repository</th><th scope="col">Wants</th><th scope="col">Asked</th><th scope="col">Status</th>
        <th scope="col">Answer</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${rows.map(
          (r) => html`<tr key=${r.id}>
            <td>${imageLink(r.repository)}</td><td>${wants(r.action)}</td>
            <td><span title=${when(r.created_at)}>${ago(r.created_at)}</span></td>
            <td><${StatusBadge} status=${r.status === "cancelled" ? "cancelled" : r.status} /></td>
            <td><${Decision} request=${r} /></td>
            <td class="cell-actions">${r.status === "pending" &&
            html`<${Button} kind="ghost" icon="close" aria-label=${`Withdraw the request for ${r.repository}`} onClick=${() => cancel(r)}>Withdraw</${Button}>`}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>`}
  </section>`;
}

const NOTES = {
  "access_request.created": (p) => html`<strong>${p.requester}</strong> asks for ${wants(p.action).toLowerCase()} on <code>${p.repository}</code>`,
  "access_request.approved": (p) =>
    html`Your request for <code>${p.repository}</code> was <strong>approved</strong>${p.expires_at ? ` until ${when(p.expires_at)}` : ""}`,
  "access_request.rejected": (p) => html`Your request for <code>${p.repository}</code> was <strong>rejected</strong>`,
};

function Notifications() {
  const notes = useLoad((signal) => get("/notifications", { signal }), []);
  const [mark, busy, error] = useAction(async (note) => {
    await post(note ? `/notifications/${note.id}/read` : "/notifications/read");
    notes.reload();
    notificationsChanged();
  });
  const items = notes.data || [];
  const unread = items.filter((n) => !n.read).length;
  return html`<section class="access-block" aria-labelledby="notes-title">
    <div class="row row-between">
      <h2 id="notes-title">Notifications ${unread > 0 && html`<span class="badge badge-warn">${unread} unread</span>`}</h2>
      <${Button} kind="secondary" icon="ok" busy=${busy} disabled=${unread === 0} onClick=${() => mark(null)}>Mark all read</${Button}>
    </div>
    <${ErrorNote} error=${notes.error || error} />
    ${notes.loading && !notes.data && html`<${Spinner} label="Loading notifications…" />`}
    ${notes.data && items.length === 0 && html`<p class="muted">No notifications.</p>`}
    <ul class="note-list">
      ${items.map(
        (n) => html`<li key=${n.id} class=${n.read ? "" : "unread"}>
          <${Icon} name="bell" />
          <div class="note-body">
            <span>${(NOTES[n.kind] || (() => n.kind.replace(/[._]/g, " ")))(n.payload)}</span>
            ${n.payload.note && html`<q>${n.payload.note}</q>`}
            <small class="muted">${ago(n.created_at)}${n.read ? " · read" : ""}</small>
          </div>
          ${!n.read &&
          html`<${Button} kind="ghost" aria-label=${`Mark read: ${n.kind.replace(/[._]/g, " ")} ${n.payload.repository || ""}`}
            onClick=${() => mark(n)}>Mark read</${Button}>`}
        </li>`,
      )}
    </ul>
  </section>`;
}

export function AccessPage() {
  const { user, workspaces } = useSession();
  const managed = workspaces.filter((w) => MANAGERS.has(w.my_role)).map((w) => w.name);
  const maintains = user.is_admin || managed.length > 0;
  return html`<section class="page access">
    <header class="page-head">
      <div>
        <h1>Access</h1>
        <p class="muted">${maintains ? "Requests to answer for your workspaces, your own requests, and your notifications." : "Your access requests and your notifications."}</p>
      </div>
    </header>
    ${maintains && html`<${Queue} managed=${managed} isAdmin=${user.is_admin} />`}
    <${MyRequests} />
    <${Notifications} />
  </section>`;
}
