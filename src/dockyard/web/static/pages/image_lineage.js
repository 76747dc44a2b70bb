// A version's lineage on the image page: "Based on X, N layers added" (or "an image you cannot
// see"), the versions built on it, and when a newer base is in the catalog a "base updated"
// note with a Rebuild action (the server says why when it cannot: not built here, not a
// maintainer).
import { useState } from "preact/hooks";
import { get, imagePath, post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Link } from "../lib/router.js";
import { shortDigest } from "../lib/format.js";
import { Button, ErrorNote, useAction, useLoad } from "../components/ui.js";

function layersAdded(n) {
  return `${n} layer${n === 1 ? "" : "s"} added`;
}

function BasedOn({ base }) {
  if (!base) return "No base image known";
  if (!base.visible) return "Based on an image you cannot see";
  return html`Based on <${Link} href=${`/images/${base.image}`}><code>${base.image}:${base.version}</code></${Link}>
    <code title=${base.digest}> ${shortDigest(base.digest || "")}</code>, ${layersAdded(base.layers_added)}`;
}

function Rebuild({ image, version }) {
  const [queued, setQueued] = useState(null);
  const [rebuild, busy, error] = useAction(async () => {
    setQueued(await post(`/images/${imagePath(image)}/versions/${encodeURIComponent(version)}/rebuild`));
  });
  if (queued) return html`<span role="status">Rebuild queued (build ${queued.id}).</span>`;
  return html`<${Button} kind="primary" icon="refresh" busy=${busy} onClick=${() => rebuild()}>Rebuild</${Button}>
    <${ErrorNote} error=${error} />`;
}

export function Lineage({ image, version }) {
  const path = `/images/${imagePath(image)}/versions/${encodeURIComponent(version.version)}/lineage`;
  const lineage = useLoad((signal) => get(path, { signal }), [path, version.digest]);
  if (!lineage.data) return null;
  const { based_on: base, base_updated: updated, children } = lineage.data;
  return html`<div class="lineage" data-testid="lineage">
    <p><${BasedOn} base=${base} />.</p>
    ${updated &&
    html`<div class="warning" role="note">Base updated: a newer version of <code>${base.image}</code> is in the catalog.${" "}
      <${Rebuild} image=${image} version=${version.version} /></div>`}
    ${children.items.length > 0 &&
    html`<p class="muted">Built on it:</p>
      <ul class="children" aria-label=${`Versions built on ${version.version}`}>
        ${children.items.map(
          (c) => html`<li key=${`${c.image}:${c.version}`}><${Link} href=${`/images/${c.image}`}><code>${c.image}:${c.version}</code></${Link}>
            <span class="muted"> ${layersAdded(c.layers_added)}${c.base_updated ? ", base updated" : ""}</span></li>`,
        )}
        ${children.next_offset !== null && html`<li class="muted">and more</li>`}
      </ul>`}
  </div>`;
}
