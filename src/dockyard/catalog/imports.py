"""Imports by URL: an external version copied into Dockyard's storage, as a durable job.

``start`` (push permission: the developer role on the image's workspace) records the import
and queues a job (one per version while it runs); the job (:mod:`.import_copy`) fetches the
manifests and blobs through the upstream client, reaching the registry only as
:class:`~dockyard.upstream.reach.Reach` says (scheme, credentials), and puts the manifests
and the tag through the registry. The push admission lets that one push over the external
version (:func:`allows_import`), and the catalog's sync turns the version internal in the
transaction that records the push, keeping where it came from (:func:`converted`). ``status``
shows the import with its job's progress (bytes and blobs done, speed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Row, select, update

from dockyard.auth.base import Principal
from dockyard.auth.guard import find_workspace, require_role
from dockyard.auth.policy import Subject
from dockyard.catalog.import_copy import Progress, copy_blobs, plan, put_manifests
from dockyard.catalog.tables import image_imports, image_versions, images
from dockyard.catalog.views import EXTERNAL
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import JobContext
from dockyard.oci.reference import parse_reference
from dockyard.outbound import OutboundPolicy
from dockyard.registry.blobs import BlobService
from dockyard.registry.events import Actor
from dockyard.registry.manifests import ManifestService
from dockyard.storage.base import StorageDriver
from dockyard.upstream.client import API_HOSTS
from dockyard.upstream.reach import Reach
from dockyard.upstream.results import UpstreamFailure
from dockyard.upstream.session import UpstreamSession

JOB_KIND = "catalog.import"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
MAX_PLATFORMS = 32
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@dataclass(frozen=True)
class ImportView:
    image: str
    version: str
    state: str
    source_reference: str
    source_digest: str | None
    digest: str | None
    platforms: list[str]
    requested_at: float
    requested_by: str
    imported_at: float | None
    error: str | None
    job_id: int | None
    job_status: str | None
    progress: dict[str, Any]


class Imports:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        reach: Reach,
        outbound: OutboundPolicy,
        blobs: BlobService,
        manifests: ManifestService,
        storage: StorageDriver,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.reach = reach
        self.outbound = outbound
        self.blobs = blobs
        self.manifests = manifests
        self.storage = storage

    async def start(self, actor: Subject, name: str, version: str, platforms: list[str]) -> ImportView:
        if len(platforms) > MAX_PLATFORMS:
            raise Invalid(f"choose at most {MAX_PLATFORMS} platforms")
        for platform in platforms:
            if not 3 <= len(platform) <= 100 or platform.count("/") not in (1, 2):
                raise Invalid(f"{platform[:100]!r} is not a platform (like linux/amd64 or linux/arm/v7)")
        now = time.time()
        async with self.db.write() as conn:
            image_id = await self._image(conn, actor, name, "developer")
            row = (
                await conn.execute(
                    select(image_versions.c.source, image_versions.c.external_reference).where(
                        image_versions.c.image_id == image_id, image_versions.c.version == version
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"{name} has no version {version!r}")
            if row[0] != EXTERNAL or not row[1]:
                raise Conflict(
                    f"{name}:{version} is stored in Dockyard already; only external versions import"
                )
            existing = await _row(conn, image_id, version)
            if existing is not None and existing.state == RUNNING and await self._alive(existing.job_id):
                return await self._view(name, existing)
            values = {
                "state": RUNNING,
                "source_reference": row[1],
                "source_digest": None,
                "target_digest": None,
                "platforms": json.dumps(sorted(set(platforms))),
                "requested_at": now,
                "requested_by": actor.name,
                "imported_at": None,
                "error": None,
                "job_id": None,
            }
            where = (image_imports.c.image_id == image_id) & (image_imports.c.version == version)
            if existing is None:
                inserted = await conn.execute(
                    self.db.insert(image_imports)
                    .values(image_id=image_id, version=version, **values)
                    .on_conflict_do_nothing(index_elements=["image_id", "version"])
                )
                if inserted.rowcount == 0:  # a concurrent start recorded it first
                    raise Conflict(f"an import of {name}:{version} is already running")
            else:
                await conn.execute(update(image_imports).where(where).values(**values))
            import_id = (await conn.execute(select(image_imports.c.id).where(where))).scalar_one()
        job_id = await self.jobs.enqueue(
            JOB_KIND, {"import_id": import_id}, max_attempts=5, dedupe_key=f"import:{import_id}"
        )
        async with self.db.write() as conn:
            await conn.execute(
                update(image_imports).where(image_imports.c.id == import_id).values(job_id=job_id)
            )
        return await self.status(actor, name, version)

    async def status(self, actor: Subject, name: str, version: str) -> ImportView:
        async with self.db.read() as conn:
            image_id = await self._image(conn, actor, name, "reader")
            row = await _row(conn, image_id, version)
        if row is None:
            raise NotFound(f"{name}:{version} has not been imported")
        return await self._view(name, row)

    async def _image(self, conn: Connection, actor: Subject, name: str, role: str) -> int:
        ws = await find_workspace(conn, name.split("/", 1)[0])
        await require_role(conn, actor, ws, role)
        found = (await conn.execute(select(images.c.id).where(images.c.name == name))).first()
        if found is None:
            raise NotFound(f"no image {name!r}")
        return int(found[0])

    async def _alive(self, job_id: int | None) -> bool:
        """Whether the import's job is still queued or running (else it may start again)."""
        job = None if job_id is None else await self.jobs.get(job_id)
        return job is not None and job.status in ("queued", "running")

    async def _view(self, name: str, row: Row[Any]) -> ImportView:
        job = None if row.job_id is None else await self.jobs.get(row.job_id)
        state, error = row.state, row.error
        if state == RUNNING and job is not None and job.status in ("failed", "cancelled"):
            # The job ended without the handler recording it (its worker stopped too often).
            state, error = FAILED, job.error or f"the import's job was {job.status}"
        return ImportView(
            image=name,
            version=row.version,
            state=state,
            source_reference=row.source_reference,
            source_digest=row.source_digest,
            digest=row.target_digest,
            platforms=json.loads(row.platforms),
            requested_at=row.requested_at,
            requested_by=row.requested_by,
            imported_at=row.imported_at,
            error=error,
            job_id=row.job_id,
            job_status=None if job is None else job.status,
            progress={} if job is None else job.progress,
        )

    async def handle(self, ctx: JobContext) -> None:
        import_id = int(ctx.job.payload["import_id"])
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(image_imports, images.c.name, images.c.workspace_id)
                    .join(images, images.c.id == image_imports.c.image_id)
                    .where(image_imports.c.id == import_id)
                )
            ).first()
        if row is None or row.state != RUNNING:
            return
        try:
            await self._copy(ctx, row)
        except UpstreamFailure as exc:  # the reason first, as verification says it
            message = f"{exc.failure.reason}: {exc.failure.message}"
            await self._fail(import_id, message)
            raise RuntimeError(message) from None
        async with self.db.read() as conn:
            state = (
                await conn.execute(select(image_imports.c.state).where(image_imports.c.id == import_id))
            ).scalar_one()
        if state != SUCCEEDED:
            message = "the version was not converted (it was removed or changed meanwhile)"
            await self._fail(import_id, message)
            raise RuntimeError(message)

    async def _copy(self, ctx: JobContext, row: Row[Any]) -> None:
        ref = parse_reference(row.source_reference)
        reach = await self.reach.connection_for(row.workspace_id, ref.registry)
        async with self.outbound.client(timeout=TIMEOUT, verify=reach.verify) as http:
            session = UpstreamSession(
                http,
                scheme=reach.scheme,
                host=ref.registry,
                api_host=API_HOSTS.get(ref.registry, ref.registry),
                repository=ref.repository,
                credentials=reach.credentials,
            )
            found = await plan(session, str(ref.digest or ref.tag), json.loads(row.platforms))
            async with self.db.write() as conn:
                await conn.execute(
                    update(image_imports)
                    .where(image_imports.c.id == row.id)
                    .values(source_digest=found.source_digest, target_digest=found.top.digest)
                )
            progress = Progress(ctx, found.blobs)
            await progress.report(force=True)
            await copy_blobs(
                session, self.blobs, self.storage, row.name, int(row.workspace_id), found.blobs, progress
            )
        await progress.report("manifests", force=True)
        actor = Actor(Principal(row.requested_by, kind="user"))
        await put_manifests(self.manifests, row.name, row.version, found, actor)
        await progress.report("done", force=True)

    async def _fail(self, import_id: int, message: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(image_imports)
                .where(image_imports.c.id == import_id)
                .values(state=FAILED, error=message[:2000])
            )


async def _row(conn: Connection, image_id: int, version: str) -> Row[Any] | None:
    return (
        await conn.execute(
            select(image_imports).where(
                image_imports.c.image_id == image_id, image_imports.c.version == version
            )
        )
    ).first()


async def allows_import(conn: Connection, repository: str, tag: str, digest: str) -> bool:
    """Whether a push of ``digest`` as ``repository:tag`` is the running import of that version
    (the one push the admission lets over an external version)."""
    found = (
        await conn.execute(
            select(image_imports.c.id)
            .join(images, images.c.id == image_imports.c.image_id)
            .where(
                images.c.name == repository,
                image_imports.c.version == tag,
                image_imports.c.state == RUNNING,
                image_imports.c.target_digest == digest,
            )
        )
    ).first()
    return found is not None


async def converted(
    conn: Connection, image_id: int, tag: str, digest: str, now: float
) -> dict[str, Any] | None:
    """In the sync's transaction: when ``digest`` pushed as ``tag`` completes the version's
    import, mark the import done and return its provenance (for the version's history)."""
    row = await _row(conn, image_id, tag)
    if row is None or row.state != RUNNING or row.target_digest != digest:
        return None
    await conn.execute(
        update(image_imports)
        .where(image_imports.c.id == row.id)
        .values(state=SUCCEEDED, imported_at=now, error=None)
    )
    return {
        "source_reference": row.source_reference,
        "source_digest": row.source_digest,
        "imported_at": now,
        "imported_by": row.requested_by,
    }
