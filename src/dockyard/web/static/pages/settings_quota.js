// Workspace settings: storage. Members see what the workspace stores (each layer once, however
// many images use it) against its quota, as a bar; platform admins set or clear the quota.
import { useLayoutEffect, useState } from "preact/hooks";
import { get, put } from "../lib/api.js";
import { bytes } from "../lib/format.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { useSession } from "../lib/session.js";
import { Button, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Reason, wsPath } from "./settings_common.js";

function source(quota) {
  if (quota.own_limit_bytes !== null) return "set for this workspace";
  return quota.limit_bytes === null ? "no quota: unlimited" : "the platform default";
}

function Usage({ quota }) {
  const limited = quota.limit_bytes !== null;
  const over = limited && quota.used_bytes > quota.limit_bytes;
  return html`<div class="quota-usage">
    <p id="quota-summary">
      <strong>${bytes(quota.used_bytes)}</strong> stored${limited ? html` of <strong>${bytes(quota.limit_bytes)}</strong> (${quota.percent}%)` : ""}${` · quota: ${source(quota)}`}
    </p>
    ${limited &&
    html`<meter class=${over ? "quota-bar over" : "quota-bar"} min="0" max=${Math.max(quota.limit_bytes, 1)}
      value=${Math.min(quota.used_bytes, quota.limit_bytes)} high=${quota.limit_bytes * 0.9} optimum="0"
      aria-labelledby="quota-summary"></meter>`}
    ${over && html`<p class="reason-note" role="status"><${Icon} name="warn" size=${16} />The workspace stores more than its quota: pushes of new layers are refused until enough is deleted.</p>`}
  </div>`;
}

export function QuotaSection({ workspace }) {
  const ws = workspace.name;
  const { user } = useSession();
  const quota = useLoad((signal) => get(wsPath(ws, "/quota"), { signal }), [ws]);
  const [limit, setLimit] = useState("");
  const [saved, setSaved] = useState(null);
  // The field shows the workspace's own quota when it is loaded or changed; a reload of the same
  // figure (after a save, or the workspace's answer arriving late) keeps what the user typed.
  // A layout effect: it runs before the form can take a keystroke (an effect runs after the
  // paint, and could empty the field under the user's first typing).
  const own = quota.data ? quota.data.own_limit_bytes : undefined;
  useLayoutEffect(() => {
    if (own !== undefined) setLimit(own === null ? "" : String(own));
  }, [ws, own]);
  const [save, busy, error] = useAction(async (value) => {
    setSaved(null);
    const body = { limit_bytes: value === "" ? null : /^\d+$/.test(value) ? Number(value) : value };
    setSaved(await put(wsPath(ws, "/quota"), body));
    quota.reload();
  });
  const reason = user.is_admin ? null : "Only platform administrators set quotas.";
  return html`
    <p class="muted">Everything the workspace's repositories store counts once per layer, however many images
      share it: pushes, builds and uploaded archives alike. A push whose next layer does not fit is refused.</p>
    <${ErrorNote} error=${quota.error} />
    ${quota.loading && !quota.data && html`<${Spinner} label="Loading the storage used…" />`}
    ${quota.data && html`<${Usage} quota=${quota.data} />`}
    <${Reason} id="quota-why" text=${reason} />
    ${quota.data &&
    html`<form class="inline-form" aria-label="Set the quota" onSubmit=${(e) => { e.preventDefault(); save(limit.trim()); }}>
      <${Field} id="quota-limit" label="Quota" error=${error?.fields?.limit_bytes}
        hint="Bytes or a size such as 500GiB or 2TB; empty: the platform default">
        <input id="quota-limit" value=${limit} disabled=${Boolean(reason)} aria-describedby=${reason ? "quota-why" : undefined}
          autocomplete="off" onInput=${(e) => setLimit(e.target.value)} />
      </${Field}>
      <${ErrorNote} error=${error?.fields ? null : error} />
      <div class="actions">
        <${Button} kind="primary" type="submit" busy=${busy} disabled=${Boolean(reason)}>Save quota</${Button}>
        <${Button} onClick=${() => { setLimit(""); save(""); }} disabled=${Boolean(reason) || quota.data.own_limit_bytes === null}>Use the default</${Button}>
      </div>
    </form>`}
    ${saved && html`<p class="notice" role="status"><${Icon} name="ok" />Saved: ${saved.limit_bytes === null ? "no quota" : `a quota of ${bytes(saved.limit_bytes)}`}.</p>`}`;
}
