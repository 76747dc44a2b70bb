// Workspace settings: retention rules. Maintainers add and remove rules and run them (a dry
// run shows what would go and deletes nothing; a real run is queued and followed); members
// see the rules and the history of runs. The API decides every change.
import { useEffect, useState } from "preact/hooks";
import { del, get, post } from "../lib/api.js";
import { ago } from "../lib/format.js";
import { html } from "../lib/html.js";
import { Button, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Confirm, Reason, needs, wsPath } from "./settings_common.js";

const EMPTY_FORM = {
  kind: "keep_last", count: "10", ordering: "pushed", days: "30", repository: "", tag_pattern: "", schedule: "daily", every_hours: "24", daily_at: "3",
};

function ruleBody(form) {
  const body = { kind: form.kind, tag_pattern: form.tag_pattern.trim() };
  if (form.schedule === "daily") body.daily_at = Number(form.daily_at);
  else body.every_hours = form.schedule === "hours" ? Number(form.every_hours || 0) : 0;
  if (form.repository.trim()) body.repository = form.repository.trim();
  if (form.kind === "keep_last") Object.assign(body, { count: Number(form.count), ordering: form.ordering });
  else body.days = Number(form.days);
  if (form.kind === "untagged") delete body.tag_pattern;
  return body;
}

function NewRule({ ws, disabled, describedBy, onAdded }) {
  const [form, setForm] = useState(EMPTY_FORM);
  const set = (key) => (event) => setForm((old) => ({ ...old, [key]: event.target.value }));
  const [add, busy, error] = useAction(async () => {
    await post(wsPath(ws, "/retention/rules"), ruleBody(form));
    setForm(EMPTY_FORM);
    onAdded();
  });
  const fields = error?.fields || {};
  const keep = form.kind === "keep_last";
  return html`<form class="inline-form" aria-label="New retention rule" novalidate onSubmit=${(e) => { e.preventDefault(); add(); }}>
    <${Field} id="ret-kind" label="The rule">
      <select id="ret-kind" value=${form.kind} disabled=${disabled} aria-describedby=${describedBy} onChange=${set("kind")}>
        <option value="keep_last">Keep the latest tags</option>
        <option value="not_pulled">Delete tags not pulled for a while</option>
        <option value="untagged">Delete untagged manifests after a while</option>
      </select>
    </${Field}>
    ${keep
      ? html`<${Field} id="ret-count" label="Tags to keep per repository (1 to 10000)" error=${fields.count}>
          <input id="ret-count" type="number" min="1" max="10000" value=${form.count} disabled=${disabled} onInput=${set("count")} />
        </${Field}>
        <${Field} id="ret-ordering" label="Latest by">
          <select id="ret-ordering" value=${form.ordering} disabled=${disabled} onChange=${set("ordering")}>
            <option value="pushed">Push time</option>
            <option value="semver">Semantic version (other tags are kept)</option>
          </select>
        </${Field}>`
      : html`<${Field} id="ret-days" label="Days (1 to 3650)" error=${fields.days}>
          <input id="ret-days" type="number" min="1" max="3650" value=${form.days} disabled=${disabled} onInput=${set("days")} />
        </${Field}>`}
    <${Field} id="ret-repository" label="Repository (empty: all of the workspace's)" hint=${`For example: ${ws}/tool`} error=${fields.repository}>
      <input id="ret-repository" value=${form.repository} disabled=${disabled} onInput=${set("repository")} />
    </${Field}>
    ${form.kind !== "untagged" &&
    html`<${Field} id="ret-pattern" label="Tags (pattern, empty: every tag)" hint="For example: dev-*" error=${fields.tag_pattern}>
      <input id="ret-pattern" value=${form.tag_pattern} disabled=${disabled} onInput=${set("tag_pattern")} />
    </${Field}>`}
    <${Field} id="ret-schedule" label="Runs">
      <select id="ret-schedule" value=${form.schedule} disabled=${disabled} onChange=${set("schedule")}>
        <option value="daily">Daily at an hour (UTC)</option>
        <option value="hours">Every … hours</option>
        <option value="manual">Only when started</option>
      </select>
    </${Field}>
    ${form.schedule === "daily" &&
    html`<${Field} id="ret-daily" label="Hour of the day (0 to 23, UTC)" error=${fields.daily_at}>
      <input id="ret-daily" type="number" min="0" max="23" value=${form.daily_at} disabled=${disabled} onInput=${set("daily_at")} />
    </${Field}>`}
    ${form.schedule === "hours" &&
    html`<${Field} id="ret-every" label="Hours between runs (1 to 8784)" error=${fields.every_hours}>
      <input id="ret-every" type="number" min="1" max="8784" value=${form.every_hours} disabled=${disabled} onInput=${set("every_hours")} />
    </${Field}>`}
    <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
    <${Button} kind="primary" type="submit" icon="plus" busy=${busy} disabled=${disabled}>Add rule</${Button}>
  </form>`;
}

/** What a run left on purpose (immutable tags, tags that are not versions), when it left any. */
function keptOnPurpose(run) {
  return run.kept ? `; ${run.kept} kept on purpose (immutable, or not a version)` : "";
}

function RunItems({ run }) {
  if (!run.items.length) return html`<p class="muted" role="status">Nothing would go.</p>`;
  return html`<div class="table-wrap"><table class="data">
    <caption class="visually-hidden">What run ${run.id} ${run.dry_run ? "would delete" : "deleted"} and kept</caption>
    <thead><tr><th scope="col">Action</th><th scope="col">Repository</th><th scope="col">Tag</th><th scope="col">Why</th></tr></thead>
    <tbody>${run.items.map(
      (i) => html`<tr key=${`${i.repository}:${i.tag}:${i.digest}`}>
        <td>${i.action === "delete" ? (run.dry_run ? "Would delete" : "Deleted") : "Kept"}</td>
        <td>${i.repository}</td><td><code>${i.tag ?? i.digest.slice(0, 19)}</code></td><td>${i.reason}</td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

function Rules({ ws, rules, mayRun, describedBy, onRun, onChanged }) {
  const [removing, setRemoving] = useState(null);
  const [run, busy, error] = useAction(async ([rule, dryRun]) => {
    onRun(await post(wsPath(ws, `/retention/rules/${rule.id}/runs`), { dry_run: dryRun }));
  });
  const [remove, removeBusy, removeError] = useAction(async () => {
    await del(wsPath(ws, `/retention/rules/${removing.id}`));
    setRemoving(null);
    onChanged();
  });
  if (!rules.length) return html`<${Empty} title="No retention rules" icon="clock"><p>Nothing is deleted automatically.</p></${Empty}>`;
  return html`<div class="table-wrap"><table class="data">
    <caption class="visually-hidden">Retention rules</caption>
    <thead><tr><th scope="col">Rule</th><th scope="col">Schedule</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
    <tbody>${rules.map(
      (rule) => html`<tr key=${rule.id}>
        <td>${rule.description}</td>
        <td>${rule.schedule}</td>
        <td class="actions">
          <${Button} icon="search" disabled=${!mayRun || busy} aria-describedby=${describedBy} aria-label=${`Dry run of rule ${rule.id}`}
            onClick=${() => run([rule, true])}>Dry run</${Button}>
          <${Button} icon="play" disabled=${!mayRun || busy} aria-describedby=${describedBy} aria-label=${`Run now: rule ${rule.id}`}
            onClick=${() => run([rule, false])}>Run now</${Button}>
          <${Button} kind="danger" icon="trash" disabled=${!mayRun} aria-describedby=${describedBy} aria-label=${`Remove rule ${rule.id}`}
            onClick=${() => setRemoving(rule)}>Remove</${Button}>
        </td>
      </tr>`,
    )}</tbody>
  </table></div>
  <${ErrorNote} error=${error} />
  ${removing &&
  html`<${Confirm} title="Remove the retention rule?" label="Remove rule" action=${remove} busy=${removeBusy} error=${removeError} onClose=${() => setRemoving(null)}>
    <p>${removing.description}. Its runs stay in the history.</p>
  </${Confirm}>`}`;
}

export function RetentionSection({ workspace, role }) {
  const ws = workspace.name;
  const rules = useLoad((signal) => get(wsPath(ws, "/retention/rules"), { signal }), [ws]);
  const runs = useLoad((signal) => get(wsPath(ws, "/retention/runs?limit=20"), { signal }), [ws]);
  const [shown, setShown] = useState(null);
  const reason = needs(role, "maintainer", "manage and run retention rules");
  const described = reason ? "retention-why" : undefined;
  const active = shown && (shown.status === "queued" || shown.status === "running");
  useEffect(() => {
    if (!active) return undefined;
    const timer = setTimeout(async () => {
      setShown(await get(wsPath(ws, `/retention/runs/${shown.id}`)));
      runs.reload();
    }, 1000);
    return () => clearTimeout(timer);
  }, [shown]);
  const show = async (run) => {
    setShown(run.items ? run : await get(wsPath(ws, `/retention/runs/${run.id}`)));
    runs.reload();
  };
  return html`
    <p class="muted">Rules delete what a workspace no longer needs: all but the latest tags, tags nobody pulled for a
      while, untagged manifests. Immutable tags are never deleted. Start with a dry run: it lists what would go and deletes
      nothing. The garbage collector frees the bytes afterwards.</p>
    <${Reason} id="retention-why" text=${reason} />
    <${ErrorNote} error=${rules.error} />
    ${rules.loading && !rules.data && html`<${Spinner} label="Loading the rules…" />`}
    ${rules.data && html`<${Rules} ws=${ws} rules=${rules.data} mayRun=${!reason} describedBy=${described} onRun=${show} onChanged=${rules.reload} />`}
    <h3 class="sub">New rule</h3>
    <${NewRule} ws=${ws} disabled=${Boolean(reason)} describedBy=${described} onAdded=${rules.reload} />
    ${shown &&
    html`<section aria-label="Run ${shown.id}" aria-live="polite">
      <h3 class="sub">${shown.dry_run ? "Dry run" : "Run"} ${shown.id}: ${shown.rule}</h3>
      <p role="status">${active
        ? `${shown.status === "queued" ? "Queued" : "Running"}: deleted ${shown.deleted} of ${shown.total}…`
        : `${shown.dry_run ? "Would delete" : "Deleted"} ${shown.deleted}${keptOnPurpose(shown)} (${shown.status}).`}</p>
      ${!active && html`<${RunItems} run=${shown} />`}
    </section>`}
    <h3 class="sub">History</h3>
    <${ErrorNote} error=${runs.error} />
    ${runs.data && !runs.data.length && html`<p class="muted">No runs yet.</p>`}
    ${runs.data?.length > 0 &&
    html`<div class="table-wrap"><table class="data">
      <caption class="visually-hidden">Retention runs, newest first</caption>
      <thead><tr><th scope="col">Run</th><th scope="col">Rule</th><th scope="col">Kind</th><th scope="col">Result</th>
        <th scope="col">By</th><th scope="col">When</th></tr></thead>
      <tbody>${runs.data.map(
        (run) => html`<tr key=${run.id}>
          <td><${Button} kind="ghost" onClick=${() => show(run)}>Run ${run.id}</${Button}></td>
          <td>${run.rule}</td><td>${run.dry_run ? "Dry run" : "Real"}</td>
          <td>${run.status}: ${run.dry_run ? "would delete" : "deleted"} ${run.deleted}${keptOnPurpose(run)}</td>
          <td>${run.started_by}</td><td>${ago(run.finished_at ?? run.queued_at)}</td>
        </tr>`,
      )}</tbody>
    </table></div>`}`;
}
