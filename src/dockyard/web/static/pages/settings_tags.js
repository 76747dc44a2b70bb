// Workspace settings: immutable tags. Tags matching a pattern keep the manifest they were first
// pushed with (a push that would move one is refused, naming the rule); exceptions stay movable.
import { useLayoutEffect, useState } from "preact/hooks";
import { get, put } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Button, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Reason, needs, wsPath } from "./settings_common.js";

const split = (text) => text.split(/[\s,]+/).filter(Boolean);

export function ImmutableTagsSection({ workspace, role }) {
  const ws = workspace.name;
  const rules = useLoad((signal) => get(wsPath(ws, "/immutable-tags"), { signal }), [ws]);
  const [form, setForm] = useState({ patterns: "", exceptions: "" });
  const [saved, setSaved] = useState(null);
  // Before the form can take a keystroke (see settings_quota.js).
  useLayoutEffect(() => {
    if (rules.data) setForm({ patterns: rules.data.patterns.join(", "), exceptions: rules.data.exceptions.join(", ") });
  }, [rules.data]);
  const [save, busy, error] = useAction(async () => {
    setSaved(null);
    setSaved(await put(wsPath(ws, "/immutable-tags"), { patterns: split(form.patterns), exceptions: split(form.exceptions) }));
  });
  const reason = needs(role, "owner", "change which tags are immutable");
  const patternError = error?.message?.startsWith("tag pattern") ? error.message : null; // shown at its field
  const described = reason ? "tags-why" : undefined;
  return html`
    <p class="muted">A pushed tag that matches a pattern keeps pointing at the image it was first pushed as: pushing
      something else under that tag is refused. Use <code>*</code> for every tag, <code>v*</code> for release tags,
      and exceptions such as <code>latest</code> for tags that are meant to move.</p>
    <${Reason} id="tags-why" text=${reason} />
    <${ErrorNote} error=${rules.error} />
    ${rules.loading && !rules.data && html`<${Spinner} label="Loading the rules…" />`}
    ${rules.data &&
    html`<form class="inline-form" aria-label="Immutable tags" onSubmit=${(e) => { e.preventDefault(); save(); }}>
      <${Field} id="tags-patterns" label="Immutable tags (patterns, separated by commas)" error=${patternError}
        hint="For example: v*, 1.*">
        <input id="tags-patterns" value=${form.patterns} disabled=${Boolean(reason)} aria-describedby=${described}
          onInput=${(e) => setForm({ ...form, patterns: e.target.value })} />
      </${Field}>
      <${Field} id="tags-exceptions" label="Exceptions (stay movable)" hint="For example: latest">
        <input id="tags-exceptions" value=${form.exceptions} disabled=${Boolean(reason)} aria-describedby=${described}
          onInput=${(e) => setForm({ ...form, exceptions: e.target.value })} />
      </${Field}>
      <${ErrorNote} error=${patternError ? null : error} />
      <${Button} kind="primary" type="submit" busy=${busy} disabled=${Boolean(reason)}>Save rules</${Button}>
    </form>`}
    ${saved &&
    html`<p class="notice" role="status"><${Icon} name="ok" />Saved: ${saved.patterns.length ? `tags matching ${saved.patterns.join(", ")} are immutable${saved.exceptions.length ? ` except ${saved.exceptions.join(", ")}` : ""}` : "no tag is immutable"}.</p>`}`;
}
