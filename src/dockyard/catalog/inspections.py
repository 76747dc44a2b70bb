"""Inspecting pushed images: durable jobs that end every ``pending`` version, crash or not.

A tag push makes the version ``pending`` and queues a ``catalog.inspect`` job
(:mod:`.sync`). The job reads the image (platforms, sizes, uncompressed layer sizes) and sets
``available``, or ``failed`` with the reason; then the packages its filesystem declares are
indexed (:mod:`.packages`). Being a job of the durable queue
(:mod:`dockyard.jobs`), an inspection whose process died is retried elsewhere once its lease
expires, up to :data:`ATTEMPTS` runs (an image that kills whoever reads it must not kill
servers forever).

:meth:`Inspections.reconcile`, run periodically by one process at a time, catches the rest:
a version left ``pending`` with no inspection queued or running (the process died between the
push and the queueing, or the version predates the queue) gets one; a version whose
inspection job ended without ending the version (its attempts were all lost) is failed with
the reason. Nothing depends on a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import and_, delete, or_, select, text, update

from dockyard.catalog.inspect import AMD64_HELP, ContentSource, ImageFacts, has_amd64, inspect_image
from dockyard.catalog.lineage import Lineage
from dockyard.catalog.measure import MeasureLimits, NotMeasured, uncompressed_size
from dockyard.catalog.package_scan import SCANNER
from dockyard.catalog.package_scan import SUCCEEDED as SUCCEEDED_SCAN
from dockyard.catalog.packages import PackageIndex
from dockyard.catalog.search_index import store_version_text
from dockyard.catalog.service import Catalog, record_event
from dockyard.catalog.tables import blob_uncompressed, image_versions, images, version_package_scans
from dockyard.catalog.views import INTERNAL
from dockyard.cluster import leases
from dockyard.db.engine import Connection, Database
from dockyard.jobs.queue import FAILED, SUCCEEDED, JobQueue
from dockyard.jobs.tables import JOB_ACTIVE, jobs
from dockyard.jobs.worker import JobContext, Worker

log = logging.getLogger("dockyard.catalog")

JOB_KIND = "catalog.inspect"
PACKAGES_JOB = "catalog.packages"  # the package index of a version inspected before it existed
ATTEMPTS = 3
LEASE = "catalog-inspections"
SWEEP_BATCH = 500  # pending versions looked at per sweep
NOT_MEASURED = "uncompressed_size_unknown"

INSPECTION_GATE_ENV = "DOCKYARD_TEST_INSPECTION_GATE"

Streamer = Callable[[str], AsyncIterator[bytes]]
Hook = Callable[[], Awaitable[None]]


def job_key(image_id: int, version: str, digest: str) -> str:
    return f"{JOB_KIND}:{image_id}:{version}:{digest}"


class Inspections:
    """The ``catalog.inspect`` job handler and the sweep that keeps every pending version moving.

    ``before_inspect`` is a test seam: awaited at the start of each inspection (crash tests
    hold an inspection there and kill the server)."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        source: ContentSource,
        stream: Streamer,
        queue: JobQueue,
        limits: MeasureLimits,
        before_inspect: Hook | None = None,
        lineage: Lineage | None = None,
        packages: PackageIndex | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.source = source
        self.stream = stream
        self.queue = queue
        self.limits = limits
        self.before_inspect = before_inspect
        self.lineage = lineage  # each available version's layer chains and base
        self.packages = packages

    async def enqueue(self, repository: str, image_id: int, version: str, digest: str) -> None:
        payload = {"repository": repository, "image_id": image_id, "version": version, "digest": digest}
        await self.queue.enqueue(
            JOB_KIND, payload, max_attempts=ATTEMPTS, dedupe_key=job_key(image_id, version, digest)
        )

    # --- the job --------------------------------------------------------------------

    async def handle(self, ctx: JobContext) -> None:
        p = ctx.job.payload
        image_id, version, digest = int(p["image_id"]), str(p["version"]), str(p["digest"])
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(images.c.workspace_id)
                    .join(image_versions, image_versions.c.image_id == images.c.id)
                    .where(
                        images.c.id == image_id,
                        image_versions.c.version == version,
                        image_versions.c.digest == digest,
                        image_versions.c.status == "pending",
                    )
                )
            ).first()
        if row is None:  # inspected already (a run that ended just before its process did), or re-pushed
            return
        if self.before_inspect is not None:
            await self.before_inspect()
        await self.inspect(str(p["repository"]), version, digest, image_id, int(row[0]))

    async def inspect(self, repository: str, tag: str, digest: str, image_id: int, workspace_id: int) -> None:
        try:
            facts = await inspect_image(self.source, repository, digest)
        except Exception as exc:  # the version records the reason; the push already succeeded
            log.warning("could not inspect %s@%s: %s", repository, digest, exc)
            await self._finish(
                image_id, tag, digest, status="failed", reason=f"could not read the image: {exc}"
            )
            return
        if not facts.is_image:
            await self._drop_artifact(image_id, tag, digest)
            return
        uncompressed, unmeasured = await self._uncompressed(facts)
        async with self.db.read() as conn:
            required = await self.catalog.require_amd64(conn, workspace_id)
        warnings = []
        status, reason = "available", None
        if not has_amd64(facts.platforms):
            warnings.append({"code": "no_amd64", "message": AMD64_HELP})
            if required:
                status, reason = "failed", "the workspace requires linux/amd64: " + AMD64_HELP
        if unmeasured is not None:
            warnings.append({"code": NOT_MEASURED, "message": unmeasured})
        if status == "available" and self.lineage is not None:  # recorded before it is seen available
            await self.lineage.inspected(image_id, tag, digest, facts.layer_ids)
        await self._finish(
            image_id,
            tag,
            digest,
            status=status,
            reason=reason,
            platforms=facts.platforms,
            compressed_size=facts.compressed_size,
            uncompressed_size=uncompressed,
            warnings=warnings,
            facts=facts,
        )
        if self.packages is not None:  # the software inside: after the version is usable
            await self.packages.scan(repository, image_id, tag, digest)

    async def _uncompressed(self, facts: ImageFacts) -> tuple[int | None, str | None]:
        """(config + layers decompressed, None), or (None, why it is not known)."""
        total = 0
        for digest, (_, media_type) in facts.layers.items():
            async with self.db.read() as conn:
                known = (
                    await conn.execute(
                        select(blob_uncompressed.c.size).where(blob_uncompressed.c.digest == digest)
                    )
                ).first()
            if known is not None:
                total += int(known[0])
                continue
            try:
                size = await uncompressed_size(self.stream(digest), media_type, self.limits)
            except NotMeasured as exc:
                return None, f"the uncompressed size is not measured: layer {digest} {exc}"
            except Exception as exc:
                log.warning("could not measure layer %s: %s", digest, exc)
                return (
                    None,
                    f"the uncompressed size is not measured: layer {digest} could not be read ({exc})",
                )
            async with self.db.write() as conn:
                stmt = self.db.insert(blob_uncompressed).values(digest=digest, size=size)
                await conn.execute(stmt.on_conflict_do_nothing(index_elements=["digest"]))
            total += size
        return total + sum(facts.other_blobs.values()), None

    async def _finish(
        self,
        image_id: int,
        tag: str,
        digest: str,
        *,
        status: str,
        reason: str | None,
        facts: ImageFacts | None = None,
        **values: Any,
    ) -> None:
        for key in ("platforms", "warnings"):
            if key in values:
                values[key] = json.dumps(values[key])
        async with self.db.write() as conn:
            result = await conn.execute(
                update(image_versions)
                .where(
                    image_versions.c.image_id == image_id,
                    image_versions.c.version == tag,
                    image_versions.c.digest == digest,  # a newer push of the tag wins
                )
                .values(status=status, status_reason=reason, checked_at=time.time(), **values)
            )
            if result.rowcount:
                if facts is not None:
                    await self._store_text(conn, image_id, tag, facts)
                await record_event(conn, image_id, "system", "inspected", tag, status=status, reason=reason)

    async def _store_text(self, conn: Connection, image_id: int, tag: str, facts: ImageFacts) -> None:
        """The labels, annotations and history search indexes (:mod:`.search_index`)."""
        version_id = (
            await conn.execute(
                select(image_versions.c.id).where(
                    image_versions.c.image_id == image_id, image_versions.c.version == tag
                )
            )
        ).scalar_one()
        await store_version_text(conn, version_id, image_id, facts.labels, facts.annotations, facts.history)

    async def _drop_artifact(self, image_id: int, tag: str, digest: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(image_versions).where(
                    image_versions.c.image_id == image_id,
                    image_versions.c.version == tag,
                    image_versions.c.digest == digest,
                )
            )
            left = (
                await conn.execute(select(image_versions.c.id).where(image_versions.c.image_id == image_id))
            ).first()
            if left is None:
                await conn.execute(delete(images).where(images.c.id == image_id))

    # --- the package index of versions inspected before it ----------------------------

    async def handle_packages(self, ctx: JobContext) -> None:
        p = ctx.job.payload
        if self.packages is not None:
            await self.packages.scan(
                str(p["repository"]), int(p["image_id"]), str(p["version"]), str(p["digest"])
            )

    async def backfill_packages(self) -> int:
        """Queue the package index of available internal versions that have none (inspected
        before the index existed), or one an older scanner left partial or failed (it may read
        more now: :data:`.package_scan.SCANNER`); a batch per call. Returns how many it queued."""
        if self.packages is None:
            return 0
        async with self.db.read() as conn:
            found = (
                await conn.execute(
                    select(images.c.id, images.c.name, image_versions.c.version, image_versions.c.digest)
                    .join(image_versions, image_versions.c.image_id == images.c.id)
                    .outerjoin(
                        version_package_scans, version_package_scans.c.version_id == image_versions.c.id
                    )
                    .where(
                        image_versions.c.source == INTERNAL,
                        image_versions.c.status == "available",
                        image_versions.c.digest.is_not(None),
                        or_(
                            version_package_scans.c.version_id.is_(None),
                            and_(  # an older scanner could not read it all
                                version_package_scans.c.scanner < SCANNER,
                                version_package_scans.c.state != SUCCEEDED_SCAN,
                            ),
                        ),
                    )
                    .order_by(image_versions.c.id)
                    .limit(SWEEP_BATCH)
                )
            ).all()
            keys = {f"{PACKAGES_JOB}:{i}:{v}:{d}": (i, n, v, d) for i, n, v, d in found}
            # An inspection still running indexes its version itself, once it has made it available.
            inspecting = {job_key(i, v, d): key for key, (i, _, v, d) in keys.items()}
            active: set[str] = set()
            if keys:
                for row in await conn.execute(
                    select(jobs.c.dedupe_key).where(
                        jobs.c.dedupe_key.in_([*keys, *inspecting]), text(JOB_ACTIVE)
                    )
                ):
                    active.add(inspecting.get(row[0], row[0]))
        queued = 0
        for key, (image_id, name, version, digest) in keys.items():
            if key not in active:
                payload = {"repository": name, "image_id": image_id, "version": version, "digest": digest}
                await self.queue.enqueue(PACKAGES_JOB, payload, max_attempts=ATTEMPTS, dedupe_key=key)
                queued += 1
        return queued

    # --- the sweep ------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Queue an inspection for each pending version that has none queued or running, and
        fail those whose inspection ended without ending them. Returns how many it moved."""
        async with self.db.read() as conn:
            pending = (
                await conn.execute(
                    select(
                        images.c.id,
                        images.c.name,
                        image_versions.c.version,
                        image_versions.c.digest,
                        image_versions.c.updated_at,
                    )
                    .join(image_versions, image_versions.c.image_id == images.c.id)
                    .where(image_versions.c.source == INTERNAL, image_versions.c.status == "pending")
                    .order_by(image_versions.c.id)
                    .limit(SWEEP_BATCH)
                )
            ).all()
            if not pending:
                return 0
            keys = {job_key(i, v, d): (i, n, v, d, u) for i, n, v, d, u in pending}
            active = {
                row[0]
                for row in await conn.execute(
                    select(jobs.c.dedupe_key).where(jobs.c.dedupe_key.in_(list(keys)), text(JOB_ACTIVE))
                )
            }
            orphans = {key: found for key, found in keys.items() if key not in active}
            ended: dict[str, tuple[str, str | None, float]] = {}
            if orphans:
                for key, status, error, finished_at in await conn.execute(
                    select(jobs.c.dedupe_key, jobs.c.status, jobs.c.error, jobs.c.finished_at)
                    .where(jobs.c.kind == JOB_KIND, jobs.c.dedupe_key.in_(list(orphans)))
                    .order_by(jobs.c.id)
                ):
                    ended[key] = (status, error, finished_at or 0.0)  # the latest run wins
        moved = 0
        for key, (image_id, name, version, digest, updated_at) in orphans.items():
            last = ended.get(key)
            if last is not None and last[2] >= updated_at:  # a run for this push ended
                status, error, _ = last
                why = {FAILED: error or "it failed", SUCCEEDED: "it ended without a result"}.get(
                    status, f"it was {status}"
                )
                await self._fail_pending(image_id, version, digest, f"the inspection did not finish: {why}")
            else:
                await self.enqueue(name, image_id, version, digest)
            moved += 1
        return moved

    async def _fail_pending(self, image_id: int, version: str, digest: str, reason: str) -> None:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(image_versions)
                .where(
                    image_versions.c.image_id == image_id,
                    image_versions.c.version == version,
                    image_versions.c.digest == digest,
                    image_versions.c.status == "pending",
                )
                .values(status="failed", status_reason=reason, checked_at=time.time())
            )
            if result.rowcount:
                log.warning("image %s version %s: %s", image_id, version, reason)
                await record_event(
                    conn, image_id, "system", "inspected", version, status="failed", reason=reason
                )

    async def run(
        self, stop: asyncio.Event, holder: str, interval: float, concurrency: int, lease_seconds: float
    ) -> None:
        """Until ``stop`` is set: inspect (``concurrency`` at a time, a worker of their own so that a
        long build never holds a push's inspection up) and sweep every ``interval`` seconds."""
        worker = Worker(
            self.queue,
            {JOB_KIND: self.handle, PACKAGES_JOB: self.handle_packages},
            concurrency=concurrency,
            lease_seconds=lease_seconds,
        )
        await asyncio.gather(worker.run(stop), self.reconcile_periodically(holder, interval, stop))

    async def reconcile_periodically(self, holder: str, interval: float, stop: asyncio.Event) -> None:
        """:meth:`reconcile` now and every ``interval`` seconds until ``stop`` is set, in the
        process that holds the lease (it outlives a few periods, and a dead holder's expires)."""
        while not stop.is_set():
            try:
                if await leases.acquire(self.db, LEASE, holder, 3 * interval):
                    moved = await self.reconcile()
                    if moved:
                        log.info("moved %d pending catalog version(s) on", moved)
                    indexed = await self.backfill_packages()
                    if indexed:
                        log.info("queued the package index of %d version(s)", indexed)
            except Exception:
                log.exception("checking pending catalog versions failed; retrying next period")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        with contextlib.suppress(Exception):
            await leases.release(self.db, LEASE, holder)
