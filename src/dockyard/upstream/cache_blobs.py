"""Blobs of the pull-through cache: streamed to the client while they are stored, in one pass.

One fetch per digest, across requests and processes: the first request takes the digest's lock
(:class:`~dockyard.cluster.locks.UploadLocks`: ``flock`` on one machine, a PostgreSQL advisory
lock across replicas; both are dropped if the holder dies), streams the upstream's bytes to its
client while writing them to a scratch file and hashing them, and at the end verifies the digest
and links the blob (:meth:`BlobService.adopt`: quota-counted like any push). A digest mismatch
discards the scratch file and ends the response with an error: nothing is linked. The other
requests wait for the lock to be free, then link and serve the stored blob; if the first one
failed, the next one to take the lock fetches again.

A blob a repository of the same workspace has already is linked without asking upstream; one
stored for another workspace only is fetched (and verified) all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator

import httpx
from sqlalchemy import select

from dockyard.cluster.locks import UploadLocks
from dockyard.oci.digest import Digest, new_hasher
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import BlobUnknown, DigestMismatch
from dockyard.registry.paths import upload_dir, upload_path
from dockyard.registry.pullthrough import Freshness, Streamed, UpstreamUnavailable
from dockyard.registry.tables import blobs
from dockyard.upstream.cache import CacheSettings, CacheTarget, ManifestCache, Upstreams, refusal
from dockyard.upstream.results import UpstreamFailure
from dockyard.upstream.wire import unreachable

WAIT_SECONDS = 3600.0  # a follower waits this long for the leader's fetch (a large layer, slowly)
POLL_SECONDS = 0.1


class BlobCache:
    """The blob half of the cache."""

    def __init__(
        self, blobs: BlobService, settings: CacheSettings, upstreams: Upstreams, locks: UploadLocks
    ) -> None:
        self.blobs = blobs
        self.settings = settings
        self.upstreams = upstreams
        self.locks = locks

    async def blob(self, repository: str, digest: Digest) -> Streamed | None:
        target = await self.settings.target(repository, fresh=True)  # asked only for unknown blobs
        if target is None:
            return None
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if await self._link_stored(repository, digest):
                return None
            stack = contextlib.AsyncExitStack()
            taken = await stack.enter_async_context(self.locks.hold(f"cache-{digest.algorithm}-{digest.hex}"))
            if taken:
                try:
                    if await self._link_stored(repository, digest):  # finished just before we took it
                        await stack.aclose()
                        return None
                    return await self._lead(stack, target, repository, digest)
                except BaseException:
                    await stack.aclose()
                    raise
            await stack.aclose()
            if time.monotonic() > deadline:
                raise UpstreamUnavailable(
                    f"pull-through cache: {digest} is still being fetched from {target.host}; retry"
                )
            await asyncio.sleep(POLL_SECONDS)  # polls the lock and the store, bounded by the deadline

    async def _link_stored(self, repository: str, digest: Digest) -> bool:
        """Link a blob a repository of the same workspace has already; False when it has none
        (a blob stored for another workspace is fetched all the same: only the upstream's bytes
        prove the upstream has it, naming its digest proves nothing)."""
        if not await self.blobs.linked_in_workspace_of(repository, digest):
            return False
        size = await self._stored_size(digest)
        if size is None:
            return False
        try:
            await self.blobs.adopt(repository, digest, size, None)
        except BlobUnknown:
            return False
        return True

    async def _stored_size(self, digest: Digest) -> int | None:
        async with self.blobs.db.read() as conn:
            row = (
                await conn.execute(
                    select(blobs.c.size).where(blobs.c.digest == digest, blobs.c.state == "live")
                )
            ).first()
        return None if row is None else int(row[0])

    async def _lead(
        self, stack: contextlib.AsyncExitStack, target: CacheTarget, repository: str, digest: Digest
    ) -> Streamed:
        session = await stack.enter_async_context(self.upstreams.connect(target))
        what = f"the blob {digest}"
        try:
            response = await stack.enter_async_context(
                session.stream(
                    f"/blobs/{digest}",
                    what=what,
                    not_found=f"{target.label()} has no blob {digest} (HTTP 404)",
                )
            )
        except UpstreamFailure as exc:
            raise refusal(exc.failure, target, f"blob {digest}", blob=True) from None
        raw = response.headers.get("content-length", "")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
            raise UpstreamUnavailable(f"pull-through cache: {target.host} sent {what} without a length")
        size = int(raw)
        return Streamed(size, self._pump(stack, response, target, repository, digest, size))

    async def _pump(
        self,
        stack: contextlib.AsyncExitStack,
        response: httpx.Response,
        target: CacheTarget,
        repository: str,
        digest: Digest,
        size: int,
    ) -> AsyncGenerator[bytes]:
        scratch_id = f"cache-{uuid.uuid4().hex}"
        storage = self.blobs.storage
        async with stack:
            writer = await storage.writer(upload_path(scratch_id))
            try:
                hasher = new_hasher(digest.algorithm)
                try:
                    async for chunk in response.aiter_raw():
                        hasher.update(chunk)
                        await writer.write(chunk)
                        if writer.size > size:
                            break
                        yield chunk
                except httpx.TransportError as exc:
                    raise UpstreamUnavailable(
                        f"pull-through cache: {unreachable(target.host, exc).message}"
                    ) from None
                if writer.size != size or f"{digest.algorithm}:{hasher.hexdigest()}" != digest:
                    raise DigestMismatch(f"{target.host} sent bytes that are not {digest}: discarded")
                await writer.commit()
            except BaseException:
                await writer.cancel()
                raise
            try:
                await self.blobs.adopt(repository, digest, size, upload_path(scratch_id))
            finally:
                with contextlib.suppress(Exception):
                    await storage.delete(upload_dir(scratch_id))


class PullThroughCache:
    """The registry's :class:`~dockyard.registry.pullthrough.PullThrough`: manifests and blobs."""

    def __init__(self, manifests: ManifestCache, blobs: BlobCache) -> None:
        self._manifests = manifests
        self._blobs = blobs

    async def manifest(self, repository: str, reference: str) -> Freshness | None:
        return await self._manifests.manifest(repository, reference)

    async def blob(self, repository: str, digest: Digest) -> Streamed | None:
        return await self._blobs.blob(repository, digest)
