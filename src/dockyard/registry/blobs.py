"""Blobs: content-addressed once in storage, served by a repository only through a link.

Ordering that keeps online GC safe (see :mod:`dockyard.registry.gc`):

1. ``claim`` upserts the blob row, refreshing ``touched_at``, and records a claim on it, in
   one transaction; a row GC is deleting makes the caller wait until GC is done, then the
   row is created afresh;
2. the bytes are renamed into ``blobs/...`` (atomic; identical content if already there);
3. the repository link is inserted and the claim removed, in one transaction.

GC leaves a claimed blob alone whatever its grace period (the move in between may take as
long as it takes), so from step 1 on the bytes stay; a claim whose holder died lapses after
``CLAIM_SECONDS``. A link always implies the bytes exist; a row without a link is invisible
to clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import and_, delete, select, update

from dockyard.auth.tables import repositories
from dockyard.cluster.cache import Generations, LookupCache
from dockyard.db.engine import Connection, Database
from dockyard.oci.digest import Digest
from dockyard.registry import repositories as repos
from dockyard.registry.errors import BlobBeingCollected, BlobUnknown, SizeMismatch
from dockyard.registry.paths import blob_path
from dockyard.registry.quotas import Ledger, release, workspace_of
from dockyard.registry.regions import Regions
from dockyard.registry.tables import blob_claims, blobs, repository_blobs
from dockyard.storage.base import LocalFile, PathNotFound, StorageDriver

_CLAIM_WAIT = 0.05
_CLAIM_ATTEMPTS = 600  # 30 s: GC deletes one blob in far less
# Longer than moving any blob's bytes into place takes (a server-side copy on S3 included):
# only a claim whose holder died is meant to lapse.
CLAIM_SECONDS = 3600.0


# Hot path (GET/HEAD of a blob): plain SQL, see Database.fetch_one.
_SIZE_IN_REPOSITORY = """
    SELECT b.size
    FROM repositories r
    JOIN repository_blobs l ON l.repository_id = r.id
    JOIN blobs b ON b.digest = l.digest
    WHERE r.name = $1 AND l.digest = $2
"""


@dataclass(frozen=True)
class BlobLocation:
    digest: Digest
    size: int
    path: str
    local: LocalFile | None
    redirect: str | None
    region: str = "default"
    storage: StorageDriver | None = None  # the region's driver the bytes are read from


class BlobService:
    def __init__(
        self, db: Database, storage: StorageDriver, generations: Generations, ledger: Ledger | None = None
    ) -> None:
        """``ledger`` counts each link against its workspace's quota (default: no limits)."""
        self.db = db
        self.ledger = ledger or Ledger(db, None)
        self.storage = storage
        self.generations = generations
        self._cache: LookupCache[int] = LookupCache(generations)
        self.regions = Regions.single(db, storage)

    def place_with(self, regions: Regions) -> None:
        """Read blobs from the region that holds them (the local one first)."""
        self.regions = regions

    async def size_in(self, repository: str, digest: Digest) -> int:
        """The blob's size if ``repository`` may serve it; else :class:`BlobUnknown`."""
        generation, size = self._cache.get(repository, digest)
        if size is not None:
            return size
        row = await self.db.fetch_one(_SIZE_IN_REPOSITORY, repository, digest)
        if row is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository!r}")
        self._cache.put(repository, digest, generation, int(row[0]))
        return int(row[0])

    async def locate(self, repository: str, digest: Digest, method: str = "GET") -> BlobLocation:
        size = await self.size_in(repository, digest)
        region = await self.regions.choose(digest)
        path = blob_path(digest)
        redirect = await region.storage.redirect_url(path, method)
        local = None
        if redirect is None:
            try:
                local = await region.storage.local_file(path)
            except PathNotFound:
                raise BlobUnknown(f"blob {digest} is missing from storage") from None
        return BlobLocation(digest, size, path, local, redirect, region.name, region.storage)

    async def read(self, repository: str, digest: Digest, limit: int) -> bytes:
        """A small blob's bytes (an image config); :class:`BlobUnknown` past ``limit`` bytes."""
        size = await self.size_in(repository, digest)
        if size > limit:
            raise BlobUnknown(f"blob {digest} is {size} bytes; expected at most {limit}")
        region = await self.regions.choose(digest)
        try:
            return await region.storage.get_content(blob_path(digest))
        except PathNotFound:
            raise BlobUnknown(f"blob {digest} is missing from storage") from None

    def stream(self, digest: Digest, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """A stored blob's bytes, in chunks (for measuring layers and for drivers without local
        files; no repository check: callers have located the blob first), from a region that holds it."""
        if not self.regions.several:
            return self.storage.reader(blob_path(digest), offset, length)
        return self._stream_from_region(digest, offset, length)

    async def _stream_from_region(
        self, digest: Digest, offset: int, length: int | None
    ) -> AsyncIterator[bytes]:
        region = await self.regions.choose(digest)
        async for chunk in region.storage.reader(blob_path(digest), offset, length):
            yield chunk

    async def claim(self, digest: Digest, size: int) -> str:
        """Step 1 above: make sure a live row exists, freshly touched and claimed; returns the
        claim's id, for :meth:`_link_claimed` (or :meth:`_release`)."""
        claim_id = uuid.uuid4().hex
        for _ in range(_CLAIM_ATTEMPTS):
            now = time.time()
            async with self.db.write() as conn:
                stmt = self.db.insert(blobs).values(
                    digest=digest, size=size, state="live", created_at=now, touched_at=now
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=["digest"], set_={"touched_at": now}, where=blobs.c.state == "live"
                )
                result = await conn.execute(stmt.returning(blobs.c.digest))
                if result.first() is not None:
                    claimed = blob_claims.insert().values(
                        id=claim_id, digest=digest, expires_at=now + CLAIM_SECONDS
                    )
                    await conn.execute(claimed)
                    return claim_id
            await asyncio.sleep(_CLAIM_WAIT)
        raise BlobBeingCollected(f"blob {digest} is being garbage collected; retry")

    async def commit(self, repository: str, scratch_path: str, digest: Digest, size: int) -> None:
        """Store verified bytes at ``scratch_path`` as ``digest`` and link it into ``repository``."""
        claim_id = await self.claim(digest, size)
        try:
            await self.storage.move(scratch_path, blob_path(digest))
            await self._link_claimed(repository, digest, claim_id, size)
        except Exception:
            await self._release(claim_id)
            raise

    async def adopt(self, repository: str, digest: Digest, size: int, scratch_path: str | None) -> bool:
        """Link ``digest`` into ``repository``, moving verified bytes from ``scratch_path`` into
        place only when the blob is not stored yet (imports deduplicate). Returns whether the
        bytes were moved; :class:`BlobUnknown` when they are neither stored nor at ``scratch_path``.
        A blob already stored is linked (and charged) at its stored size: a ``size`` that differs
        is refused with :class:`SizeMismatch` (a descriptor cannot make a blob count less).

        The claim comes first, as in :meth:`commit`: once it holds, GC leaves the stored bytes
        alone, so the check for them that follows stays true until the link exists."""
        claim_id = await self.claim(digest, size)
        try:
            moved = await self._place(digest, scratch_path)
            if not moved:
                await self._stored_size(digest, size)
            await self._link_claimed(repository, digest, claim_id, size)
        except Exception:
            await self._release(claim_id)
            raise
        return moved

    async def linked_in_workspace(self, workspace_id: int, digest: Digest) -> bool:
        """Whether a repository of the workspace serves ``digest`` already: only then may a copy
        into that workspace link it without its bytes (having them elsewhere on the server
        proves nothing about the one who names the digest)."""
        async with self.db.read() as conn:
            found = await conn.execute(
                select(repository_blobs.c.digest)
                .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
                .where(repositories.c.workspace_id == workspace_id, repository_blobs.c.digest == digest)
                .limit(1)
            )
            return found.first() is not None

    async def _stored_size(self, digest: Digest, size: int) -> None:
        """Refuse linking a stored blob under a size other than the one it was stored with."""
        async with self.db.read() as conn:
            stored = (await conn.execute(select(blobs.c.size).where(blobs.c.digest == digest))).scalar()
        if stored is not None and int(stored) != size:
            raise SizeMismatch(f"blob {digest} is {int(stored)} bytes, not the {size} bytes given")

    async def _place(self, digest: Digest, scratch_path: str | None) -> bool:
        """The bytes of a claimed blob in place: True when moved from ``scratch_path``, False
        when already stored."""
        try:
            await self.storage.stat(blob_path(digest))
        except PathNotFound:
            if scratch_path is None:
                raise BlobUnknown(f"blob {digest} is not stored") from None
            try:
                await self.storage.move(scratch_path, blob_path(digest))
            except PathNotFound:
                raise BlobUnknown(f"blob {digest} is neither stored nor staged") from None
            return True
        return False

    async def _link_claimed(self, repository: str, digest: Digest, claim_id: str, size: int) -> None:
        """Step 3 above: the link replaces the claim, in one transaction (GC sees one or the
        other); a blob over the workspace's quota is refused here, before it is visible."""
        async with self.db.write() as conn:
            repo_id = await repos.ensure_id(self.db, conn, repository)
            await self._link(conn, repo_id, digest, size)
            await conn.execute(delete(blob_claims).where(blob_claims.c.id == claim_id))

    async def _release(self, claim_id: str) -> None:
        """A claim that will not be linked (the push failed): GC may have the blob again.
        Best effort: a claim left behind lapses."""
        with contextlib.suppress(Exception):
            async with self.db.write() as conn:
                await conn.execute(delete(blob_claims).where(blob_claims.c.id == claim_id))

    async def _link(self, conn: Connection, repo_id: int, digest: Digest, size: int) -> None:
        """Link (or touch the link of) ``digest`` into the repository and count it against its
        workspace's quota: :class:`~dockyard.registry.errors.QuotaExceeded` rolls both back."""
        now = time.time()
        stmt = self.db.insert(repository_blobs).values(repository_id=repo_id, digest=digest, touched_at=now)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["repository_id", "digest"], set_={"touched_at": now})
        )
        await self.ledger.charge(conn, await workspace_of(conn, repo_id), digest, size)

    async def mount(self, repository: str, source: str, digest: Digest) -> int | None:
        """Link a blob of ``source`` into ``repository``; its size, or None when not reachable.

        The source repository is share-locked first, so GC cannot sweep its link meanwhile;
        the blob is refreshed only while it is live (which, holding the row, also keeps GC
        from marking it) and only then linked.
        """
        async with self.db.write() as conn:
            source_id = await repos.find_id(conn, source, for_write=True)
            if source_id is None:
                return None
            linked = await conn.execute(
                select(repository_blobs.c.digest).where(
                    repository_blobs.c.repository_id == source_id, repository_blobs.c.digest == digest
                )
            )
            if linked.first() is None:
                return None
            refreshed = await conn.execute(
                update(blobs)
                .where(blobs.c.digest == digest, blobs.c.state == "live")
                .values(touched_at=time.time())
                .returning(blobs.c.size)
            )
            row = refreshed.first()
            if row is None:
                return None
            repo_id = await repos.ensure_id(self.db, conn, repository)
            await self._link(conn, repo_id, digest, int(row[0]))
            return int(row[0])

    async def unlink(self, repository: str, digest: Digest) -> None:
        """DELETE of a blob: the repository no longer serves it; GC reclaims the bytes."""
        async with self.db.write() as conn:
            repo_id = await repos.require_id(conn, repository, for_write=True)
            result = await conn.execute(
                delete(repository_blobs).where(
                    and_(repository_blobs.c.repository_id == repo_id, repository_blobs.c.digest == digest)
                )
            )
            await release(conn, await workspace_of(conn, repo_id), [digest])
        await self.generations.changed(repository)
        if result.rowcount == 0:
            raise BlobUnknown(f"blob {digest} is not in repository {repository!r}")
