"""Online garbage collection: no read-only window, pushes continue while it runs.

Mark, per repository: tagged manifests, their index children (transitively), manifests
whose ``subject`` is live (signatures, SBOMs) and anything younger than the grace period.
Sweep, each step a conditional statement that re-checks its condition at delete time:

1. untagged, unreferenced manifests older than the grace period;
2. repository links to blobs no remaining manifest references, untouched for the grace
   period (a manifest PUT touches the links it relies on, in its own transaction); the
   workspace's quota gives back a blob when its last link in the workspace goes
   (:mod:`dockyard.registry.quotas`);
3. blobs with no link left, no claim (an upload between its claim and its link, whatever
   the grace period) and untouched for the grace period: the row is first marked
   ``deleting`` (so a concurrent upload of the same bytes waits, see
   :mod:`dockyard.registry.blobs`), then the bytes go, then the row;
4. upload sessions idle longer than the purge period, and upload folders with no session
   (a session's row is written before its folder, and the folders are listed before the
   rows are read, so a session being started is never taken for an orphan).

It runs on a full disk too (see :meth:`GarbageCollector.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.auth.tables import repositories
from dockyard.cluster.cache import Generations
from dockyard.db.engine import Connection, Database
from dockyard.oci.digest import Digest
from dockyard.registry import repositories as repos
from dockyard.registry.paths import blob_path, upload_dir
from dockyard.registry.quotas import release, workspace_of
from dockyard.registry.regions import Regions
from dockyard.registry.tables import (
    blob_claims,
    blobs,
    manifest_pulls,
    manifest_references,
    manifests,
    repository_blobs,
    tags,
    uploads,
)
from dockyard.registry.uploads import UploadService
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.gc")


@dataclass
class GcReport:
    dry_run: bool
    manifests: list[str] = field(default_factory=list)  # "repo@digest"
    links: list[str] = field(default_factory=list)  # "repo@digest"
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    uploads: int = 0
    seconds: float = 0.0
    evicted: list[str] = field(default_factory=list)  # "repo@digest" a size-limited cache evicted

    def summary(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "manifests_deleted": len(self.manifests),
            "links_deleted": len(self.links),
            "blobs_deleted": len(self.blobs),
            "bytes_freed": self.bytes_freed,
            "uploads_purged": self.uploads,
            "manifests_evicted": len(self.evicted),
            "seconds": round(self.seconds, 3),
        }


class Evictor(Protocol):
    async def __call__(self, dry_run: bool) -> list[str]:
        """Delete what must go before collection (``repo@digest``); a dry run only names it."""
        ...


class _DryRunRollback(Exception):
    pass


class GarbageCollector:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        uploads: UploadService,
        generations: Generations,
        grace: float,
        upload_purge: float,
    ) -> None:
        self.db = db
        self.generations = generations
        self.storage = storage
        self.uploads = uploads
        self.grace = grace
        self.upload_purge = upload_purge
        self._evictors: list[Evictor] = []
        self.regions: Regions | None = None  # other regions' copies of collected blobs go too

    def evict_with(self, evictor: Evictor) -> None:
        """Run ``evictor`` first in each run (a layer above: the pull-through cache's size
        limits); what it deletes is then swept by the same run."""
        self._evictors.append(evictor)

    async def run(self, dry_run: bool = False) -> GcReport:
        """Collect garbage. ``dry_run`` runs the very same statements in one transaction
        that is rolled back, and deletes no bytes.

        On a full disk the database cannot record even a deletion (SQLite writes it to its
        log first), so the run gives up the database's reserve and starts again (every step
        re-checks its condition, so a second run is safe); the reserve is taken back once
        the run has freed space.
        """
        try:
            return await self._run(dry_run)
        except InsufficientStorage as exc:
            if dry_run or not await asyncio.to_thread(self.db.release_reserve):
                raise
            log.warning("%s; released the database's reserve to collect garbage", exc)
            return await self._run(dry_run)
        finally:
            if not dry_run:
                await asyncio.to_thread(self.db.ensure_reserve)

    async def _run(self, dry_run: bool) -> GcReport:
        started = time.monotonic()
        report = GcReport(dry_run)
        for evictor in self._evictors:
            report.evicted += await evictor(dry_run)
        cutoff = time.time() - self.grace
        if dry_run:
            try:
                async with self.db.write() as conn:
                    await self._collect(_Shared(conn), cutoff, report)
                    raise _DryRunRollback
            except _DryRunRollback:
                pass
        else:
            await self._finish_interrupted(report)
            await self._collect(_PerStatement(self.db), cutoff, report)
            report.uploads = await self.uploads.purge_stale(time.time() - self.upload_purge)
            report.uploads += await self._sweep_orphan_uploads(cutoff)
        report.seconds = time.monotonic() - started
        log.info("gc finished: %s", report.summary())
        return report

    async def _collect(self, tx: _Transactions, cutoff: float, report: GcReport) -> None:
        async with tx.read() as conn:
            repo_rows = (await conn.execute(select(repositories.c.id, repositories.c.name))).all()
        for repo_id, name in repo_rows:
            # Mark and sweep a repository under its exclusive lock: a push to it waits for
            # the few milliseconds this takes, so nothing becomes live between the two.
            before = len(report.manifests) + len(report.links)
            async with tx.write() as conn:
                if not await repos.lock_exclusive(conn, repo_id):
                    continue
                await self._sweep_manifests(conn, repo_id, name, cutoff, report)
                await self._sweep_links(conn, repo_id, name, cutoff, report)
            if not report.dry_run and len(report.manifests) + len(report.links) > before:
                await self.generations.changed(name)
        await self._sweep_blobs(tx, cutoff, report)

    async def _dead_manifests(self, conn: Connection, repo_id: int, cutoff: float) -> list[tuple[int, str]]:
        rows = (
            await conn.execute(
                select(
                    manifests.c.id, manifests.c.digest, manifests.c.subject_digest, manifests.c.created_at
                ).where(manifests.c.repository_id == repo_id)
            )
        ).all()
        tagged = {
            r[0]
            for r in await conn.execute(select(tags.c.manifest_digest).where(tags.c.repository_id == repo_id))
        }
        children_rows = (
            await conn.execute(
                select(manifests.c.digest, manifest_references.c.digest)
                .select_from(
                    manifest_references.join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                )
                .where(manifests.c.repository_id == repo_id, manifest_references.c.kind == "manifest")
            )
        ).all()
        children: dict[str, list[str]] = {}
        for parent, child in children_rows:
            children.setdefault(parent, []).append(child)
        by_subject: dict[str, list[str]] = {}
        for _id, digest, subject, _created in rows:
            if subject:
                by_subject.setdefault(subject, []).append(digest)
        live: set[str] = set()
        stack = list(tagged | {digest for _id, digest, _s, created in rows if created >= cutoff})
        while stack:
            digest = stack.pop()
            if digest in live:
                continue
            live.add(digest)
            stack.extend(children.get(digest, ()))
            stack.extend(by_subject.get(digest, ()))
        return [(mid, digest) for mid, digest, _s, _c in rows if digest not in live]

    async def _sweep_manifests(
        self, conn: Connection, repo_id: int, name: str, cutoff: float, report: GcReport
    ) -> None:
        dead = await self._dead_manifests(conn, repo_id, cutoff)
        if dead:
            await conn.execute(
                delete(manifests).where(manifests.c.id.in_([manifest_id for manifest_id, _ in dead]))
            )
            report.manifests += [f"{name}@{digest}" for _, digest in dead]
        # The pull times of manifests gone (collected now, or deleted by digest before).
        gone = ~exists().where(
            manifests.c.repository_id == repo_id, manifests.c.digest == manifest_pulls.c.digest
        )
        await conn.execute(delete(manifest_pulls).where(manifest_pulls.c.repository_id == repo_id, gone))

    async def _sweep_links(
        self, conn: Connection, repo_id: int, name: str, cutoff: float, report: GcReport
    ) -> None:
        referenced = (
            select(manifest_references.c.digest)
            .select_from(
                manifest_references.join(manifests, manifests.c.id == manifest_references.c.manifest_id)
            )
            .where(manifests.c.repository_id == repo_id, manifest_references.c.kind == "blob")
        )
        condition = and_(
            repository_blobs.c.repository_id == repo_id,
            repository_blobs.c.touched_at < cutoff,
            repository_blobs.c.digest.not_in(referenced),
        )
        rows = (
            await conn.execute(delete(repository_blobs).where(condition).returning(repository_blobs.c.digest))
        ).all()
        # The workspace's quota gives back the blobs none of its repositories links any more.
        await release(conn, await workspace_of(conn, repo_id), [r[0] for r in rows])
        report.links += [f"{name}@{r[0]}" for r in rows]

    async def _sweep_blobs(self, tx: _Transactions, cutoff: float, report: GcReport) -> None:
        now = time.time()
        linked = exists().where(repository_blobs.c.digest == blobs.c.digest)
        claimed = exists().where(blob_claims.c.digest == blobs.c.digest, blob_claims.c.expires_at >= now)
        condition = and_(blobs.c.state == "live", blobs.c.touched_at < cutoff, ~linked, ~claimed)
        async with tx.write() as conn:  # claims whose holder died
            await conn.execute(delete(blob_claims).where(blob_claims.c.expires_at < now))
        async with tx.read() as conn:
            candidates = (await conn.execute(select(blobs.c.digest, blobs.c.size).where(condition))).all()
        for digest, size in candidates:
            async with tx.write() as conn:
                # Lock the row first (every claim and mount writes it): one in flight commits
                # before the condition is checked, by a statement of its own that sees it.
                # (PostgreSQL re-checks a waiting UPDATE's subqueries on its old snapshot.)
                await conn.execute(select(blobs.c.digest).where(blobs.c.digest == digest).with_for_update())
                marked = await conn.execute(
                    update(blobs).where(blobs.c.digest == digest, condition).values(state="deleting")
                )
            if marked.rowcount:
                if not report.dry_run:
                    await self._delete_blob(digest)
                report.blobs.append(digest)
                report.bytes_freed += int(size)

    async def _delete_blob(self, digest: str) -> None:
        if self.regions is not None:
            await self.regions.forget(digest)
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(blob_path(Digest(digest)))
        try:
            async with self.db.write() as conn:
                await conn.execute(delete(blobs).where(blobs.c.digest == digest, blobs.c.state == "deleting"))
        except IntegrityError:
            # A link appeared despite the 'deleting' mark (it must not; this keeps one bad row
            # from stopping every later collection): the row goes back to live, bytes missing.
            log.error("blob %s was linked while being deleted; its bytes are gone", digest)
            async with self.db.write() as conn:
                await conn.execute(update(blobs).where(blobs.c.digest == digest).values(state="live"))

    async def _finish_interrupted(self, report: GcReport) -> None:
        """Rows left 'deleting' by a GC that died midway: finish their deletion."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(select(blobs.c.digest, blobs.c.size).where(blobs.c.state == "deleting"))
            ).all()
        for digest, size in rows:
            await self._delete_blob(digest)
            report.blobs.append(digest)
            report.bytes_freed += int(size)

    async def _sweep_orphan_uploads(self, cutoff: float) -> int:
        try:
            folders = await self.storage.list("uploads")
        except PathNotFound:
            return 0
        # Read after listing: a folder listed has its session's row written already (see
        # UploadService.start), so only a session gone since then is missing here.
        async with self.db.read() as conn:
            known = {r[0] for r in await conn.execute(select(uploads.c.id))}
        removed = 0
        for folder in folders:
            upload_id = folder.rsplit("/", 1)[1]
            if upload_id in known:
                continue
            try:
                info = await self.storage.stat(folder)
                if info.modified < cutoff:
                    await self.storage.delete(upload_dir(upload_id))
                    removed += 1
            except PathNotFound:
                continue
        return removed


class _Transactions(Protocol):
    def read(self) -> AbstractAsyncContextManager[Connection]: ...
    def write(self) -> AbstractAsyncContextManager[Connection]: ...


class _PerStatement:
    """A live run: short transactions, so pushes are never blocked for long."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self) -> AbstractAsyncContextManager[Connection]:
        return self.db.read()

    def write(self) -> AbstractAsyncContextManager[Connection]:
        return self.db.write()


class _Shared:
    """A dry run: every step on one connection whose transaction is rolled back."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def _same(self) -> AsyncIterator[Connection]:
        yield self.conn

    def read(self) -> AbstractAsyncContextManager[Connection]:
        return self._same()

    def write(self) -> AbstractAsyncContextManager[Connection]:
        return self._same()
