// The dialog that creates an access token (a user's or a robot's): name, scopes, expiry;
// then the secret, shown once, with how to use it.
import { useState } from "preact/hooks";
import { post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Button, CopyText, Dialog, ErrorNote, Field, useAction } from "./ui.js";

export function NewTokenDialog({ path, title, createdTitle, idPrefix, nameHint, choices, initialScopes, initialDays, secretLabel, usage, onClose, onCreated }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState(new Set(initialScopes));
  const [days, setDays] = useState(initialDays);
  const [created, setCreated] = useState(null);
  const [create, busy, error] = useAction(async () => {
    const token = await post(path, {
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
    return html`<${Dialog} title=${createdTitle} onClose=${onClose}>
      <p>Copy the token now: it is not shown again.</p>
      <${CopyText} text=${created.secret} label=${secretLabel} />
      <p class="hint">${usage}</p>
      <div class="actions"><${Button} kind="primary" onClick=${onClose}>Done</${Button}></div>
    </${Dialog}>`;
  }
  const fields = error?.fields || {};
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <form onSubmit=${(e) => {
      e.preventDefault();
      create();
    }} novalidate>
      <${Field} id=${`${idPrefix}-name`} label="Name" hint=${nameHint} error=${fields.name}>
        <input id=${`${idPrefix}-name`} value=${name} onInput=${(e) => setName(e.target.value)} autofocus autocomplete="off" />
      </${Field}>
      <fieldset class="checks">
        <legend>Allowed to</legend>
        ${choices.map(
          ([scope, label]) => html`<label><input type="checkbox" checked=${scopes.has(scope)} onChange=${() => flip(scope)} />${label}</label>`,
        )}
      </fieldset>
      <${Field} id=${`${idPrefix}-days`} label="Expires after (days)" hint="Leave empty for a token that does not expire" error=${fields.expires_in_days}>
        <input id=${`${idPrefix}-days`} type="number" min="1" max="3650" value=${days} onInput=${(e) => setDays(e.target.value)} />
      </${Field}>
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" busy=${busy} disabled=${!name.trim() || scopes.size === 0}>Create token</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}
