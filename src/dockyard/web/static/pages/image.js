// One image: its visibility (one setting for it and all its versions, its repository's), its
// versions (status, platforms, digest, sizes, the signatures, attestations and SBOMs attached to
// each), how to pull each pinned, the storage it uses, its history, downloads, and (when it
// cannot be seen) a request for access.
import { useState } from "preact/hooks";
import { ApiError, del, get, imagePath, post, put } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Link, navigate } from "../lib/router.js";
import { useSession } from "../lib/session.js";
import { ago, bytes, shortDigest, when } from "../lib/format.js";
import { Button, CopyText, Dialog, Empty, ErrorNote, Field, Spinner, useAction, useLoad } from "../components/ui.js";
import { Changes } from "../components/changes.js";
import { MarkBadges } from "../components/marks.js";
import { VersionStatus } from "./repository.js";
import { InlineError, Saved } from "./settings_common.js";
import { ImportButton } from "./image_import.js";
import { Lineage } from "./image_lineage.js";

const EVENT_TEXT = {
  created: "Created",
  modified: "Modified",
  pushed: "Pushed",
  inspected: "Inspected",
  verified: "Verified",
  "version.added": "Version added",
  "version.deleted": "Version deleted",
  "image.deleted": "Image deleted",
  "build_definition.deleted": "Build definition deleted",
  "push.ignored": "Push ignored",
  imported: "Imported",
  "build.started": "Build started",
  built: "Built",
};

// Importing needs push permission (the server decides); the button shows to the workspace's members.
function mayImport(image, session) {
  if (!session?.user) return false;
  return session.user.is_admin || session.workspaces.some((w) => w.name === image.workspace);
}

function downloadReason(image, version, session) {
  if (version.source === "external") return "external images are pulled from their own registry";
  if (version.status !== "available") return `this version is ${version.status}, not available`;
  const member = session.workspaces.some((w) => w.name === image.workspace);
  if (!member && !session.user.is_admin) return "only members of the image's workspace may download it";
  return null;
}

function PullCommand({ image, version }) {
  const pinned = useLoad(
    (signal) => get(`/images/${imagePath(image)}/versions/${encodeURIComponent(version.version)}/resolve`, { signal }),
    [image, version.version, version.digest],
  );
  if (pinned.error) return html`<p class="muted">${pinned.error.message}</p>`;
  if (!pinned.data) return html`<${Spinner} label="Resolving…" />`;
  return html`<${CopyText} text=${`docker pull ${pinned.data.reference}`} label=${`pull command for ${version.version}`} />`;
}

function PinDigest({ image, version, onPinned }) {
  const [name, setName] = useState(`${version.version}-${shortDigest(version.digest)}`);
  const [open, setOpen] = useState(false);
  const [pin, busy, error] = useAction(async () => {
    const base = version.external_reference.replace(/@sha256:[0-9a-f]+$/, "").replace(/:[^:/]+$/, "");
    await post(`/images/${imagePath(image)}/versions`, { reference: `${base}@${version.digest}`, version: name });
    setOpen(false);
    onPinned();
  });
  if (!open) return html`<${Button} kind="secondary" icon="lock" onClick=${() => setOpen(true)}>Pin the digest</${Button}>`;
  return html`<${Dialog} title="Pin the digest" onClose=${() => setOpen(false)}>
    <p>Adds a version that always means <code>${shortDigest(version.digest)}</code>, whatever
      <code>${version.version}</code> points to later.</p>
    <${Field} id="pin-name" label="New version name" error=${error?.fields?.version}>
      <input id="pin-name" value=${name} onInput=${(e) => setName(e.target.value)} />
    </${Field}>
    <${ErrorNote} error=${error?.fields?.version ? null : error} />
    <div class="actions">
      <${Button} onClick=${() => setOpen(false)}>Cancel</${Button}>
      <${Button} kind="primary" busy=${busy} onClick=${() => pin()}>Pin</${Button}>
    </div>
  </${Dialog}>`;
}

// A download is a link; when it is not allowed, a disabled button that says why.
function DownloadLink({ href, reason, children }) {
  if (reason) {
    return html`<button type="button" class="btn btn-secondary" disabled title=${reason}><${Icon} name="download" />${children}</button>`;
  }
  return html`<a class="btn btn-secondary" href=${href} download><${Icon} name="download" />${children}</a>`;
}

// "signature attached · 2 attestations": what is attached to a version (cosign tags, OCI
// referrers), by kind. Attached, not verified: the badge never says "signed" or "trusted".
const ATTACHED = [
  ["signature", (n) => (n === 1 ? "signature attached" : `${n} signatures attached`)],
  ["attestation", (n) => `${n} attestation${n === 1 ? "" : "s"}`],
  ["sbom", (n) => `${n} SBOM${n === 1 ? "" : "s"}`],
  ["other", (n) => `${n} other artifact${n === 1 ? "" : "s"}`],
];

export function attachedSummary(signatures) {
  const counts = {};
  for (const s of signatures || []) counts[s.kind] = (counts[s.kind] || 0) + 1;
  return ATTACHED.filter(([kind]) => counts[kind]).map(([kind, text]) => text(counts[kind])).join(" · ");
}

function SignatureBadge({ version }) {
  // A verified or invalid signature says so in its mark (components/marks.js), not here.
  const decided = ["verified", "invalid"].includes(version.marks?.signature);
  const summary = attachedSummary(decided ? version.signatures.filter((s) => s.kind !== "signature") : version.signatures);
  if (!summary) return null;
  return html`<span class="badge badge-muted" data-testid="attached"
    title="Signatures, attestations and SBOMs attached to this version's digest; Dockyard keeps them, verify them with cosign"><${Icon} name="lock" />${summary}</span>`;
}

function Attached({ signatures }) {
  return html`<ul class="attached">
    ${signatures.map(
      (s) => html`<li key=${s.digest}><strong>${s.kind}</strong> <code title=${s.digest}>${shortDigest(s.digest)}</code>
        <span class="muted"> ${s.tag ? html`tag <code>${s.tag}</code>` : `OCI referrer (${s.artifact_type || s.media_type})`}${`, ${bytes(s.size)}, ${when(s.pushed_at)}`}</span></li>`,
    )}
  </ul>`;
}

function VersionCard({ image, version, session, reload, usage }) {
  const reason = downloadReason(image, version, session);
  const [removing, setRemoving] = useState(false);
  const [remove, busy, error] = useAction(async () => {
    await del(`/images/${imagePath(image.name)}/versions/${encodeURIComponent(version.version)}`);
    setRemoving(false);
    reload();
  });
  const moving = version.warnings.find((w) => w.code === "moving_tag");
  const archive = (format) =>
    `/api/v1/images/${imagePath(image.name)}/versions/${encodeURIComponent(version.version)}/archive?format=${format}`;
  return html`<article class="card version" aria-labelledby=${`v-${version.version}`}>
    <header class="card-head">
      <h3 id=${`v-${version.version}`}><code>${version.version}</code></h3>
      <span class="card-badges">
        <${MarkBadges} marks=${version.marks} />
        <${SignatureBadge} version=${version} />
        <${VersionStatus} version=${{ ...version, image: image.name }} />
      </span>
    </header>
    <dl class="facts">
      <dt>Source</dt><dd>${version.source === "external" ? html`External: <code>${version.external_reference}</code>` : "Internal (stored here)"}</dd>
      ${version.imported && html`<dt>Imported from</dt><dd><code>${version.imported.source_reference}</code>${" "}
        (<code title=${version.imported.source_digest}>${shortDigest(version.imported.source_digest || "")}</code>)${`, ${when(version.imported.imported_at)} by ${version.imported.imported_by}`}</dd>`}
      <dt>Type</dt><dd>${version.kind === "bench" ? "Bench" : "Tool"}</dd>
      <dt>Platforms</dt><dd>${version.platforms.length ? version.platforms.join(", ") : "—"}</dd>
      <dt>Digest</dt><dd>${version.digest ? html`<code title=${version.digest}>${version.digest}</code>` : "—"}</dd>
      <dt>Size</dt><dd>${bytes(version.compressed_size)} compressed${version.uncompressed_size ? `, ${bytes(version.uncompressed_size)} unpacked` : ""}</dd>
      ${usage !== undefined && html`<dt>Stored here</dt><dd>${bytes(usage)}</dd>`}
      <dt>Regions</dt><dd>${version.regions.length ? version.regions.join(", ") : "—"}</dd>
      <dt>Added</dt><dd>${when(version.created_at)} by ${version.created_by}</dd>
      ${version.signatures?.length > 0 && html`<dt>Attached</dt><dd><${Attached} signatures=${version.signatures} /></dd>`}
    </dl>
    ${moving && html`<p class="warning" role="note">${moving.message}</p>`}
    ${version.source === "internal" && version.status === "available" && html`<${Lineage} image=${image.name} version=${version} />`}
    <${PullCommand} image=${image.name} version=${version} />
    <div class="row">
      <${DownloadLink} href=${archive("docker")} reason=${reason}>Download for docker load</${DownloadLink}>
      <${DownloadLink} href=${archive("oci")} reason=${reason}>Download OCI archive</${DownloadLink}>
      ${version.source === "external" && mayImport(image, session) && html`<${ImportButton} image=${image.name} version=${version} onImported=${reload} />`}
      ${moving && version.digest && html`<${PinDigest} image=${image.name} version=${version} onPinned=${reload} />`}
      ${image.may_delete && html`<${Button} kind="danger" icon="trash" onClick=${() => setRemoving(true)}
        aria-label=${`Delete version ${version.version}`}>Delete</${Button}>`}
    </div>
    ${reason && html`<p class="hint">Downloads: ${reason}.</p>`}
    ${removing &&
    html`<${Dialog} title=${`Delete ${image.name}:${version.version}?`} onClose=${() => setRemoving(false)}>
      <p>${version.source === "external"
        ? "The version leaves the catalog; the image stays in its own registry."
        : "The tag is deleted from this registry with the signatures, attestations and SBOMs attached to it, and its bytes at the next garbage collection. This cannot be undone."}</p>
      <${ErrorNote} error=${error} />
      <div class="actions">
        <${Button} onClick=${() => setRemoving(false)}>Cancel</${Button}>
        <${Button} kind="danger" icon="trash" busy=${busy} onClick=${() => remove()}>Delete</${Button}>
      </div>
    </${Dialog}>`}
  </article>`;
}

const VISIBILITY_MEANS = {
  public: "Anyone may see it and pull it, signed in or not.",
  private: "Members of the workspace and people given access (teams, grants, approved requests).",
};

// The image's visibility, which is its repository's: everyone who sees the image sees it; its
// maintainers (who may delete it, the API's may_delete) change it, as in the repository settings.
function ImageVisibility({ image, onChanged }) {
  const [saved, setSaved] = useState(false);
  const [change, busy, error] = useAction(async (visibility) => {
    setSaved(false);
    await put(`/images/${imagePath(image.name)}/visibility`, { visibility });
    setSaved(true);
    onChanged();
  });
  const text = `${VISIBILITY_MEANS[image.visibility]} It applies to every version, internal and external.`;
  const means = html`<small class="reason" id="image-visibility-means">${text}</small>`;
  if (!image.may_delete) {
    return html`<div class="field field-inline">
      <span>Visibility: <strong>${image.visibility === "public" ? "Public" : "Private"}</strong></span>${means}
    </div>`;
  }
  return html`<div class="field field-inline">
    <label for="image-visibility">Visibility</label>
    <select id="image-visibility" value=${image.visibility} disabled=${busy} aria-describedby="image-visibility-means"
      onChange=${(e) => change(e.target.value)}>
      <option value="private">Private</option>
      <option value="public">Public</option>
    </select>
    <${Saved} when=${saved && !busy} />
    ${means}
    <${InlineError} error=${error} />
  </div>`;
}

// Delete the whole image: offered only to who may (the API's may_delete), after a confirmation.
function DeleteImage({ image }) {
  const [open, setOpen] = useState(false);
  const [remove, busy, error] = useAction(async () => {
    await del(`/images/${imagePath(image.name)}`);
    navigate("/repository");
  });
  if (!image.may_delete) return null;
  return html`<${Button} kind="danger" icon="trash" onClick=${() => setOpen(true)}>Delete image</${Button}>
    ${open &&
    html`<${Dialog} title=${`Delete ${image.name}?`} onClose=${() => setOpen(false)}>
      <p>Every version (${image.versions.map((v) => v.version).join(", ") || "none"}), its tags and the
        repository are deleted; the bytes go at the next garbage collection and the name is free again.
        This cannot be undone.</p>
      <${ErrorNote} error=${error} />
      <div class="actions">
        <${Button} onClick=${() => setOpen(false)}>Cancel</${Button}>
        <${Button} kind="danger" icon="trash" busy=${busy} onClick=${() => remove()}>Delete image</${Button}>
      </div>
    </${Dialog}>`}`;
}

function RequestAccess({ name }) {
  const [message, setMessage] = useState("");
  const [sent, setSent] = useState(null);
  const [send, busy, error] = useAction(async () => {
    setSent(await post("/access-requests", { repository: name, action: "pull", message }));
  });
  if (sent) {
    return html`<p class="notice" role="status"><${Icon} name="ok" />Request sent: the maintainers of
      <code>${name.split("/")[0]}</code> are notified, and so are you when they answer.</p>`;
  }
  return html`<${Empty} title="You cannot see this image" icon="lock">
    <p>It does not exist, or it is private. If you know it exists, ask its maintainers for access.</p>
    <form class="request" onSubmit=${(e) => {
      e.preventDefault();
      send();
    }}>
      <${Field} id="request-message" label="Message to the maintainers">
        <textarea id="request-message" rows="3" value=${message} onInput=${(e) => setMessage(e.target.value)}
          placeholder="What you need it for"></textarea>
      </${Field}>
      <${ErrorNote} error=${error} />
      <${Button} kind="primary" type="submit" busy=${busy} icon="key">Request access</${Button}>
    </form>
  </${Empty}>`;
}

export function ImagePage({ name }) {
  const session = useSession();
  const image = useLoad((signal) => get(`/images/${imagePath(name)}`, { signal }), [name]);
  const history = useLoad((signal) => get(`/images/${imagePath(name)}/events`, { signal }), [name]);
  const usage = useLoad((signal) => get(`/images/${imagePath(name)}/usage`, { signal }).catch(() => null), [name]);
  const reload = () => {
    image.reload();
    history.reload();
    usage.reload();
  };
  if (image.error instanceof ApiError && image.error.status === 404) {
    return html`<section class="page"><p><${Link} href="/repository">← Docker Repository</${Link}></p>
      <h1>${name}</h1><${RequestAccess} name=${name} /></section>`;
  }
  if (image.error) return html`<section class="page"><${ErrorNote} error=${image.error} /></section>`;
  if (!image.data) return html`<${Spinner} label="Loading the image…" />`;
  const data = image.data;
  const perVersion = Object.fromEntries((usage.data?.versions || []).map((v) => [v.version, v.bytes]));
  return html`<section class="page">
    <p><${Link} href="/repository">← Docker Repository</${Link}></p>
    <header class="page-head">
      <div>
        <h1>${data.name}</h1>
        <${MarkBadges} marks=${data.marks} />
        <p class="muted">${data.description || "No description."}</p>
      </div>
      <dl class="facts facts-inline">
        <dt>Workspace</dt><dd>${data.workspace}</dd>
        <dt>Stored here</dt><dd>${usage.data ? bytes(usage.data.bytes) : "—"}</dd>
        <dt>Modified</dt><dd>${ago(data.updated_at)} by ${data.updated_by}</dd>
      </dl>
      <${DeleteImage} image=${data} />
    </header>
    <${ImageVisibility} image=${data} onChanged=${reload} />
    <h2>Versions</h2>
    ${data.versions.length === 0 && html`<p class="muted">No versions you may see.</p>`}
    <div class="cards">
      ${data.versions.map(
        (v) => html`<${VersionCard} key=${v.version} image=${data} version=${v} session=${session} reload=${reload} usage=${perVersion[v.version]} />`,
      )}
    </div>
    <h2>History</h2>
    ${history.data &&
    html`<ol class="timeline">
      ${history.data.map(
        (e) => html`<li><strong>${EVENT_TEXT[e.kind] || e.kind}</strong>${e.version ? html` <code>${e.version}</code>` : ""}
          <span class="muted"> by ${e.actor}, ${when(e.at)}</span><${Changes} detail=${e.detail} /></li>`,
      )}
    </ol>`}
    ${history.error && html`<${ErrorNote} error=${history.error} />`}
  </section>`;
}

