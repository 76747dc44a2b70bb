// Create > External image: paste a reference (or a URL, or a `docker pull` command); the name
// and version fill themselves in from what the server reads in it, with its warnings.
import { useEffect, useState } from "preact/hooks";
import { get, post, query } from "../lib/api.js";
import { html } from "../lib/html.js";
import { useSession } from "../lib/session.js";
import { Button, Dialog, ErrorNote, Field, useAction } from "../components/ui.js";

const WRITERS = new Set(["developer", "maintainer", "owner"]);

export function CreateExternal({ onClose, onCreated }) {
  const { workspaces, workspace: current, user } = useSession();
  const writable = workspaces.filter((w) => user.is_admin || WRITERS.has(w.my_role));
  const start = writable.some((w) => w.name === current) ? current : writable[0]?.name || "";
  // The image's one visibility (its repository's): the workspace's default until chosen.
  const defaultOf = (name) => writable.find((w) => w.name === name)?.default_visibility || "private";
  const [form, setForm] = useState({
    reference: "",
    workspace: start,
    name: "",
    version: "",
    description: "",
    type: "tool",
    visibility: defaultOf(start),
  });
  const [touched, setTouched] = useState({ name: false, version: false, visibility: false });
  const [check, setCheck] = useState(null);
  const update = (key) => (event) => {
    const value = event.target.value;
    setForm((old) => ({
      ...old,
      [key]: value,
      ...(key === "workspace" && !touched.visibility ? { visibility: defaultOf(value) } : {}),
    }));
    if (key in touched) setTouched((old) => ({ ...old, [key]: true }));
  };
  useEffect(() => {
    const text = form.reference.trim();
    if (!text) {
      setCheck(null);
      return undefined;
    }
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      try {
        const found = await get(`/references${query({ reference: text })}`, { signal: controller.signal });
        setCheck(found);
        if (found.ok) {
          setForm((old) => ({
            ...old,
            name: touched.name ? old.name : found.reference.suggested_name,
            version: touched.version ? old.version : found.reference.suggested_version,
          }));
        }
      } catch (error) {
        if (error.name !== "AbortError") setCheck({ ok: false, detail: error.message });
      }
    }, 250);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [form.reference]);
  const [save, busy, error] = useAction(async () => {
    const created = await post("/images", {
      workspace: form.workspace,
      reference: form.reference.trim(),
      name: form.name.trim() || undefined,
      version: form.version.trim() || undefined,
      description: form.description,
      type: form.type,
      visibility: form.visibility,
    });
    onCreated(created);
  });
  const fields = error?.fields || {};
  const moving = check?.ok && check.reference.warnings.find((w) => w.code === "moving_tag");
  const submit = (event) => {
    event.preventDefault();
    save();
  };
  if (!writable.length) {
    return html`<${Dialog} title="Create external image" onClose=${onClose}>
      <p>You need the developer role in a workspace to add images. Ask a workspace owner, or create your own workspace.</p>
      <div class="actions"><${Button} onClick=${onClose}>Close</${Button}></div>
    </${Dialog}>`;
  }
  return html`<${Dialog} title="Create external image" onClose=${onClose} wide>
    <form onSubmit=${submit} novalidate>
      <${Field} id="reference" label="Image URL" error=${fields.reference || (check && !check.ok && check.detail)}
        hint="As you would pull it, e.g. quay.io/biocontainers/samtools:1.19--h50ea8bc_0 or docker.io/alpine:3.20">
        <input id="reference" value=${form.reference} onInput=${update("reference")} autocomplete="off" spellcheck="false" autofocus
          aria-invalid=${check && !check.ok ? "true" : undefined} aria-describedby="reference-hint reference-error" />
      </${Field}>
      ${check && !check.ok && check.suggestion &&
      html`<p class="suggestion">
        <${Button} kind="ghost" onClick=${() => setForm((old) => ({ ...old, reference: check.suggestion }))}>Use <code>${check.suggestion}</code></${Button}>
      </p>`}
      ${check?.ok && html`<p class="hint">Reads as <code>${check.reference.canonical}</code></p>`}
      ${moving && html`<p class="warning" role="note">${moving.message}. Once verified, the image page offers to pin it in one click.</p>`}
      <div class="grid-2">
        <${Field} id="workspace" label="Workspace" error=${fields.workspace}>
          <select id="workspace" value=${form.workspace} onChange=${update("workspace")}>
            ${writable.map((w) => html`<option value=${w.name}>${w.name}</option>`)}
          </select>
        </${Field}>
        <${Field} id="type" label="Type">
          <select id="type" value=${form.type} onChange=${update("type")}>
            <option value="tool">Tool</option>
            <option value="bench">Bench</option>
          </select>
        </${Field}>
        <${Field} id="name" label="Name" error=${fields.name}>
          <input id="name" value=${form.name} onInput=${update("name")} autocomplete="off" spellcheck="false" />
        </${Field}>
        <${Field} id="version" label="Version" error=${fields.version}>
          <input id="version" value=${form.version} onInput=${update("version")} autocomplete="off" spellcheck="false" />
        </${Field}>
      </div>
      <${Field} id="description" label="Description" error=${fields.description}>
        <textarea id="description" rows="2" value=${form.description} onInput=${update("description")}></textarea>
      </${Field}>
      <${Field} id="visibility" label="Visibility" error=${fields.visibility}
        hint="The image's and all its versions', the same setting as its repository's; maintainers change it later on the image page.">
        <select id="visibility" value=${form.visibility} onChange=${update("visibility")} aria-describedby="visibility-hint">
          <option value="private">Private: members of the workspace and people given access</option>
          <option value="public">Public: anyone, signed in or not</option>
        </select>
      </${Field}>
      <${ErrorNote} error=${Object.keys(fields).length ? null : error} />
      <div class="actions">
        <${Button} onClick=${onClose}>Cancel</${Button}>
        <${Button} kind="primary" type="submit" busy=${busy} disabled=${!form.reference.trim() || (check && !check.ok)}>Save</${Button}>
      </div>
    </form>
  </${Dialog}>`;
}
