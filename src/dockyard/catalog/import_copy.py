"""The job that copies an external version into Dockyard's storage (an import by URL).

One run, for ``registry/repository:tag`` imported as ``name:version``:

1. the manifest (an index, or one image) is fetched and its digest checked; an index's
   children are fetched too (only the chosen platforms', when some were chosen: the index is
   then rewritten to list only those, so its digest differs from the upstream's);
2. each blob (configs and layers) no repository of the target's workspace has is streamed
   from the upstream into a scratch file, its digest computed on the way (one pass, a chunk
   in memory at a time), then linked into the repository through
   :class:`~dockyard.registry.blobs.BlobService` (quotas count it); a blob the workspace
   has already is only linked (not fetched); one stored for another workspace only is
   fetched all the same (its bytes prove the upstream has it);
3. the children are put by digest, then the index (or image) under the version's tag, through
   :class:`~dockyard.registry.manifests.ManifestService`: the push admission lets this one
   push over the external version and the catalog's sync turns the version internal.

A killed worker leaves the job to the queue's lease expiry; the next run starts over, and
every blob committed before is skipped. A half-written blob is fetched again from the start
(its scratch file is per run).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from dockyard.jobs.worker import JobContext
from dockyard.oci.digest import Digest
from dockyard.oci.manifest import Descriptor, ParsedManifest
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import BlobUnknown
from dockyard.registry.events import Actor
from dockyard.registry.manifests import ManifestService
from dockyard.registry.paths import upload_dir, upload_path
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.upstream.client import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    _is_attestation,
    _parse,
    _verified_digest,
)
from dockyard.upstream.results import UpstreamFailure
from dockyard.upstream.session import UpstreamSession
from dockyard.upstream.wire import Fetched as Wire
from dockyard.upstream.wire import invalid

PROGRESS_EVERY = 1.0  # seconds between progress reports (each is a database write)


@dataclass(frozen=True)
class Fetched:
    digest: str
    media_type: str
    body: bytes


@dataclass
class Plan:
    top: Fetched  # what the tag is put as
    children: list[Fetched]
    blobs: list[Descriptor]
    source_digest: str


class Progress:
    """Bytes and blobs done, and the speed, reported through the job's heartbeat."""

    def __init__(self, ctx: JobContext | None, blobs: list[Descriptor]) -> None:
        self.ctx = ctx
        self.bytes_total = sum(b.size for b in blobs)
        self.blobs_total = len(blobs)
        self.bytes_done = 0
        self.blobs_done = 0
        self.skipped = 0
        self.fetched_bytes = 0
        self.started = time.monotonic()
        self.reported = 0.0

    def view(self, phase: str) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return {
            "phase": phase,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "blobs_done": self.blobs_done,
            "blobs_total": self.blobs_total,
            "blobs_skipped": self.skipped,
            "bytes_per_second": int(self.fetched_bytes / elapsed),
        }

    async def report(self, phase: str = "blobs", force: bool = False) -> None:
        now = time.monotonic()
        if self.ctx is not None and (force or now - self.reported >= PROGRESS_EVERY):
            self.reported = now
            await self.ctx.heartbeat(self.view(phase))


async def plan(session: UpstreamSession, reference: str, platforms: list[str]) -> Plan:
    """The manifests and blobs to copy (blobs in order, each once)."""
    where = f"{session.host}/{session.repository}"
    top = await _manifest(session, reference, f"the manifest of {where}:{reference}", None)
    source_digest = top.digest
    parsed = _parse_fetched(top)
    children: list[Fetched] = []
    images: list[ParsedManifest] = []
    if parsed.is_index:
        chosen = []
        raw = json.loads(top.body)
        for entry, item in zip(parsed.manifests, raw.get("manifests", []), strict=False):
            platform = entry.platform or {}
            name = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
            if platforms and (name not in platforms or _is_attestation(entry)):
                continue
            child = await _manifest(session, str(entry.digest), f"the manifest {entry.digest}", entry.digest)
            children.append(child)
            images.append(_parse_fetched(child))
            chosen.append(item)
        if platforms:
            if not chosen:
                raise invalid(f"the index of {where} has none of the platforms {', '.join(platforms)}")
            raw["manifests"] = chosen
            body = json.dumps(raw, separators=(",", ":")).encode()
            top = Fetched(str(Digest.of(body)), top.media_type, body)
    else:
        images.append(parsed)
    seen: dict[str, Descriptor] = {}
    for image in images:
        for blob in (image.config, *image.layers):
            if blob is not None:
                seen.setdefault(str(blob.digest), blob)
    return Plan(top, children, list(seen.values()), source_digest)


async def _manifest(session: UpstreamSession, ref: str, what: str, expected: Digest | None) -> Fetched:
    answer = await session.get(
        f"/manifests/{ref}", what=what, limit=MAX_MANIFEST_BYTES, accept=MANIFEST_ACCEPT
    )
    if answer.status != 200:
        raise UpstreamFailure(session.failure(answer, what=what, not_found=f"{what} was not found"))
    digest = _verified_digest(answer, expected, what)
    media_type = (answer.content_type or "").split(";")[0].strip()
    return Fetched(digest, media_type, answer.body)


def _parse_fetched(fetched: Fetched) -> ParsedManifest:
    return _parse(
        Wire(200, httpx.Headers({"content-type": fetched.media_type}), fetched.body), "the manifest"
    )


async def copy_blobs(
    session: UpstreamSession,
    blobs: BlobService,
    storage: StorageDriver,
    repository: str,
    workspace_id: int,
    todo: Iterable[Descriptor],
    progress: Progress,
) -> None:
    """Link every blob into ``repository``, fetching (and verifying) each one unless a repository
    of the same workspace has it already: a blob stored for another workspace is fetched all the
    same, its bytes proving the upstream has it (naming a digest proves nothing)."""
    for blob in todo:
        ours = await blobs.linked_in_workspace(workspace_id, blob.digest)
        if ours and await _adopt(blobs, repository, blob, None):
            progress.skipped += 1
            progress.bytes_done += blob.size
        else:
            await _fetch(session, blobs, storage, repository, blob, progress)
        progress.blobs_done += 1
        await progress.report(force=True)


async def _adopt(blobs: BlobService, repository: str, blob: Descriptor, scratch: str | None) -> bool:
    try:
        await blobs.adopt(repository, blob.digest, blob.size, scratch)
    except BlobUnknown:
        return False
    return True


async def _fetch(
    session: UpstreamSession,
    blobs: BlobService,
    storage: StorageDriver,
    repository: str,
    blob: Descriptor,
    progress: Progress,
) -> None:
    scratch_id = f"import-{uuid.uuid4().hex}"
    scratch = upload_path(scratch_id)
    what = f"the blob {blob.digest} of {session.host}/{session.repository}"
    hasher = hashlib.new(blob.digest.algorithm)
    size = 0
    writer = await storage.writer(scratch)
    try:
        async with session.stream(
            f"/blobs/{blob.digest}", what=what, not_found=f"{what} was not found"
        ) as answer:
            async for chunk in answer.aiter_raw():
                size += len(chunk)
                if size > blob.size:
                    raise invalid(f"{what} is larger than the {blob.size} bytes its descriptor says")
                hasher.update(chunk)
                await writer.write(chunk)
                progress.bytes_done += len(chunk)
                progress.fetched_bytes += len(chunk)
                await progress.report()
        if size != blob.size or hasher.hexdigest() != blob.digest.hex:
            raise invalid(f"{session.host} sent {what} with different content (its digest does not match)")
        await writer.commit()
    except BaseException:
        await writer.cancel()
        progress.bytes_done -= size
        raise
    finally:
        await writer.close()
    try:
        await blobs.adopt(repository, blob.digest, blob.size, scratch)
    finally:
        with contextlib.suppress(PathNotFound):
            await storage.delete(upload_dir(scratch_id))


async def put_manifests(
    manifests: ManifestService, repository: str, tag: str, found: Plan, actor: Actor | None
) -> None:
    """Children by digest first, then the top manifest under the tag."""
    for child in found.children:
        await manifests.put(repository, child.digest, child.body, child.media_type, actor=actor)
    await manifests.put(repository, tag, found.top.body, found.top.media_type, actor=actor)
