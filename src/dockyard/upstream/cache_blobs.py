"""Blobs of the pull-through cache: streamed to the client while they are stored, in one pass.

One fetch per digest, across requests and processes:

- in one process, the first request for a digest opens its *flight* (an asyncio future): the
  other requests of the process wait on it, without polling and without a database
  connection, then link the stored blob (or, if the fetch failed, the next one fetches again);
- across processes and replicas, the flight's request takes the digest's lock
  (:class:`~dockyard.cluster.locks.UploadLocks`: ``flock`` on one machine, a PostgreSQL advisory
  lock across replicas; both are dropped if the holder dies). Only when another process holds
  it does the flight poll it, less often as time goes on (0.1 s doubling to 2 s).

The leader streams the upstream's bytes to its client while writing them to a scratch file and
hashing them, and at the end verifies the digest and links the blob (:meth:`BlobService.adopt`:
quota-counted like any push), then removes the lock's file. A digest mismatch discards the
scratch file and ends the response with an error: nothing is linked.

A HEAD of a blob not stored yet asks the upstream with a HEAD (its size and digest) and
downloads nothing. Where the upstream's HEAD is refused with 403 or 405 (a redirect to a URL
presigned for GET only, as registries on object storage answer), the headers of a GET answer
it, its body never read.

A blob already linked in a repository of the same cache workspace is linked without asking
upstream. A blob stored only elsewhere (another workspace, maybe private) is fetched from the
upstream all the same and its digest verified: possession is proven by the bytes, never by
naming a digest (that would let anyone who may pull from the cache read, or probe for, any
blob on the server); the store then just links the bytes it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator

import httpx
from sqlalchemy import select

from dockyard.auth.tables import repositories
from dockyard.cluster.locks import UploadLocks
from dockyard.oci.digest import Digest, Hasher, new_hasher
from dockyard.oci.ranges import parse_length
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import BlobUnknown, DigestMismatch
from dockyard.registry.paths import upload_dir, upload_path
from dockyard.registry.pullthrough import Freshness, Streamed, UpstreamUnavailable
from dockyard.registry.tables import blobs, repository_blobs
from dockyard.storage.base import FileWriter
from dockyard.upstream.cache import (
    CacheSettings,
    CacheTarget,
    ManifestCache,
    Upstreams,
    create_private,
    refusal,
)
from dockyard.upstream.results import UpstreamFailure
from dockyard.upstream.wire import Fetched, unreachable

GET_ONLY = frozenset({403, 405})  # a HEAD refused where a GET may be served
WAIT_SECONDS = 3600.0  # a follower waits this long for the leader's fetch (a large layer, slowly)
POLL_SECONDS = 0.1  # the first pause polling another process's lock; doubled up to MAX_POLL_SECONDS
MAX_POLL_SECONDS = 2.0
# The upstream's bytes are relayed, hashed and stored in pieces of about this size (httpx reads
# 64 KiB at a time: a thread hand-off, a hash update and a send per 64 KiB cost more than the
# bytes' transfer on loopback).
RELAY_BYTES = 1024 * 1024


class BlobCache:
    """The blob half of the cache."""

    def __init__(
        self, blobs: BlobService, settings: CacheSettings, upstreams: Upstreams, locks: UploadLocks
    ) -> None:
        self.blobs = blobs
        self.settings = settings
        self.upstreams = upstreams
        self.locks = locks
        self._flights: dict[str, asyncio.Future[None]] = {}  # lock name -> done once fetched or failed

    async def blob(self, repository: str, digest: Digest) -> Streamed | None:
        target = await self.settings.target(repository, fresh=True)  # asked only for unknown blobs
        if target is None:
            return None
        key = f"cache-{digest.algorithm}-{digest.hex}"
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if await self._link_stored(target, repository, digest):
                return None
            flight = self._flights.get(key)
            if flight is not None:  # this process is getting it: wait, then link it (or lead)
                await self._follow(flight, deadline, target, digest)
                continue
            flight = asyncio.get_running_loop().create_future()
            self._flights[key] = flight  # no await since the lookup: one flight per digest
            try:
                streamed = await self._get(key, flight, deadline, target, repository, digest)
            except BaseException:
                self._land(key, flight)
                raise
            if streamed is None:
                self._land(key, flight)
            return streamed

    async def _follow(
        self, flight: asyncio.Future[None], deadline: float, target: CacheTarget, digest: Digest
    ) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamUnavailable(
                f"pull-through cache: {digest} is still being fetched from {target.host}; retry"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(flight), remaining)

    def _land(self, key: str, flight: asyncio.Future[None]) -> None:
        """The flight is over (stored, or failed): wake the requests waiting on it."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.done():
            flight.set_result(None)

    async def _get(
        self,
        key: str,
        flight: asyncio.Future[None],
        deadline: float,
        target: CacheTarget,
        repository: str,
        digest: Digest,
    ) -> Streamed | None:
        """As this process's flight: take the cross-process lock and fetch, or wait for the
        process holding it to store the blob (None: stored and linked)."""
        pause = POLL_SECONDS
        while True:
            stack = contextlib.AsyncExitStack()
            taken = await stack.enter_async_context(self.locks.hold(key))
            if taken:
                try:
                    if await self._link_stored(target, repository, digest):  # finished just before
                        self.locks.forget(key)
                        await stack.aclose()
                        return None
                    return await self._lead(stack, key, flight, target, repository, digest)
                except BaseException:
                    await stack.aclose()
                    raise
            await stack.aclose()
            if time.monotonic() > deadline:
                raise UpstreamUnavailable(
                    f"pull-through cache: {digest} is still being fetched from {target.host}; retry"
                )
            await asyncio.sleep(pause)  # another process fetches it: polled, less often as it goes on
            pause = min(pause * 2, MAX_POLL_SECONDS)
            if await self._link_stored(target, repository, digest):
                return None

    async def size(self, repository: str, digest: Digest) -> int | None:
        """A HEAD of a blob not linked in ``repository``: its size as the upstream answers a
        HEAD (nothing is downloaded); None when not a cache repository or once linked from the
        cache's store."""
        target = await self.settings.target(repository, fresh=True)
        if target is None or await self._link_stored(target, repository, digest):
            return None
        what = f"the blob {digest}"
        try:
            async with self.upstreams.connect(target) as session:
                missing = f"{target.label()} has no blob {digest} (HTTP 404)"
                fetched = await session.head(f"/blobs/{digest}", what=what)
                if fetched.status in GET_ONLY:
                    # Registries that keep blobs in object storage redirect a HEAD to a URL
                    # presigned for GET, which refuses a HEAD: the GET's headers answer it
                    # instead (the body is never read; the connection is closed).
                    async with session.stream(f"/blobs/{digest}", what=what, not_found=missing) as opened:
                        fetched = Fetched(opened.status_code, opened.headers, b"")
                if fetched.status != 200:
                    raise UpstreamFailure(session.failure(fetched, what=what, not_found=missing))
        except UpstreamFailure as exc:
            raise refusal(exc.failure, target, f"blob {digest}", blob=True) from None
        claimed = fetched.headers.get("docker-content-digest")
        if claimed and claimed != digest:
            raise UpstreamUnavailable(
                f"pull-through cache: {target.host} answered {what} with {claimed[:80]}"
            )
        size = parse_length(fetched.headers.get("content-length", ""))
        if size is None:
            raise UpstreamUnavailable(f"pull-through cache: {target.host} sent {what} without a length")
        return size

    async def _link_stored(self, target: CacheTarget, repository: str, digest: Digest) -> bool:
        """Link a blob that the cache workspace holds already; False when it does not."""
        size = await self._cached_size(target.workspace_id, digest)
        if size is None:
            return False
        try:
            await self.blobs.adopt(repository, digest, size, None)
        except BlobUnknown:
            return False
        return True

    async def _cached_size(self, workspace_id: int, digest: Digest) -> int | None:
        """The size of ``digest`` when it is live and linked in a repository of the cache
        workspace ``workspace_id`` (so fetched from its upstreams once already)."""
        query = (
            select(blobs.c.size)
            .select_from(
                blobs.join(repository_blobs, repository_blobs.c.digest == blobs.c.digest).join(
                    repositories, repositories.c.id == repository_blobs.c.repository_id
                )
            )
            .where(
                blobs.c.digest == digest,
                blobs.c.state == "live",
                repositories.c.workspace_id == workspace_id,
            )
            .limit(1)
        )
        async with self.blobs.db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else int(row[0])

    async def _lead(
        self,
        stack: contextlib.AsyncExitStack,
        key: str,
        flight: asyncio.Future[None],
        target: CacheTarget,
        repository: str,
        digest: Digest,
    ) -> Streamed:
        what = f"the blob {digest}"
        try:  # connecting may fail too (an ECR token exchange): UpstreamFailure, never a 500
            session = await stack.enter_async_context(self.upstreams.connect(target))
            response = await stack.enter_async_context(
                session.stream(
                    f"/blobs/{digest}",
                    what=what,
                    not_found=f"{target.label()} has no blob {digest} (HTTP 404)",
                )
            )
        except UpstreamFailure as exc:
            raise refusal(exc.failure, target, f"blob {digest}", blob=True) from None
        if session.credentials is not None:
            await create_private(self.blobs.db, repository)
        size = parse_length(response.headers.get("content-length", ""))
        if size is None:
            raise UpstreamUnavailable(f"pull-through cache: {target.host} sent {what} without a length")
        pump = self._pump(stack, key, flight, response, target, repository, digest, size)
        await anext(pump)  # started: closed even before its first chunk, it lets go of the digest
        return Streamed(size, pump)

    async def _pump(
        self,
        stack: contextlib.AsyncExitStack,
        key: str,
        flight: asyncio.Future[None],
        response: httpx.Response,
        target: CacheTarget,
        repository: str,
        digest: Digest,
        size: int,
    ) -> AsyncGenerator[bytes]:
        try:
            async with stack:  # the lock, the upstream session and its response
                yield b""  # taken by blob(): from here a close runs what follows (a generator
                # closed before it starts runs nothing, and would hold the digest for good)
                stored = self._store(response, target, repository, digest, size)
                async with contextlib.aclosing(stored):
                    async for chunk in stored:
                        yield chunk
                self.locks.forget(key)  # stored: its lock file goes (whoever opened it finds the blob)
        finally:
            self._land(key, flight)

    async def _store(
        self, response: httpx.Response, target: CacheTarget, repository: str, digest: Digest, size: int
    ) -> AsyncGenerator[bytes]:
        scratch_id = f"cache-{uuid.uuid4().hex}"
        storage = self.blobs.storage
        writer = await storage.writer(upload_path(scratch_id))
        try:
            hasher = new_hasher(digest.algorithm)
            pending, received = bytearray(), 0
            held: bytes | None = None  # the last piece goes out only once the digest is verified
            try:
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > size:
                        break
                    pending += chunk
                    if len(pending) >= RELAY_BYTES:
                        if held is not None:
                            yield held
                        held = bytes(pending)
                        pending.clear()
                        await _keep(hasher, writer, held)
            except httpx.TransportError as exc:
                raise UpstreamUnavailable(
                    f"pull-through cache: {unreachable(target.host, exc).message}"
                ) from None
            if pending and received <= size:
                if held is not None:
                    yield held
                held = bytes(pending)
                await _keep(hasher, writer, held)
            if received != size or f"{digest.algorithm}:{hasher.hexdigest()}" != digest:
                raise DigestMismatch(f"{target.host} sent bytes that are not {digest}: discarded")
            if held is not None:  # the client's response ends with it: the commit is not its wait
                yield held
            await writer.commit()
        except BaseException:
            await writer.cancel()
            raise
        try:
            await self.blobs.adopt(repository, digest, size, upload_path(scratch_id))
        finally:
            with contextlib.suppress(Exception):
                await storage.delete(upload_dir(scratch_id))


async def _keep(hasher: Hasher, writer: FileWriter, piece: bytes) -> None:
    """Hash and store one relayed piece, the hash in a worker thread (hashlib lets go of the
    GIL) while the write goes on: neither runs on the event loop in small pieces."""
    await asyncio.gather(asyncio.to_thread(hasher.update, piece), writer.write(piece))


class PullThroughCache:
    """The registry's :class:`~dockyard.registry.pullthrough.PullThrough`: manifests and blobs."""

    def __init__(self, manifests: ManifestCache, blobs: BlobCache) -> None:
        self._manifests = manifests
        self._blobs = blobs

    async def manifest(self, repository: str, reference: str) -> Freshness | None:
        return await self._manifests.manifest(repository, reference)

    async def blob(self, repository: str, digest: Digest) -> Streamed | None:
        return await self._blobs.blob(repository, digest)

    async def blob_size(self, repository: str, digest: Digest) -> int | None:
        return await self._blobs.size(repository, digest)

    async def close(self) -> None:
        """Release the upstream connections (at shutdown)."""
        await self._blobs.upstreams.close()

    async def refuse_write(self, repository: str) -> str | None:
        workspace = repository.split("/", 1)[0]
        if not await self._blobs.settings.is_cache(workspace):
            return None
        return f"{workspace} is a pull-through cache of other registries: push to another workspace"
