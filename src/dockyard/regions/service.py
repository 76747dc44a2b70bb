"""Adding a region to a version (a ``regions.copy`` job), removing one, listing, usage.

Maintainers of the image's workspace change its regions; whoever sees the version reads them.
The last region a version lives in cannot be removed. Removal deletes from the region only the
blobs no other version there needs and that another region also holds."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from sqlalchemy import Select, delete, select, update

from dockyard.auth.policy import Subject
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import image_versions, images
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, NotFound
from dockyard.jobs.queue import FINISHED, JobQueue
from dockyard.jobs.tables import jobs
from dockyard.oci.digest import Digest
from dockyard.regions import blobsets
from dockyard.regions.tables import version_regions
from dockyard.regions.views import RegionUsage, VersionRegion, VersionRegions
from dockyard.registry.paths import blob_path
from dockyard.registry.regions import Regions
from dockyard.registry.tables import region_blobs
from dockyard.storage.base import PathNotFound

JOB_KIND = "regions.copy"


def job_key(version_id: int, region: str) -> str:
    return f"{JOB_KIND}:{version_id}:{region}"


class RegionService:
    def __init__(self, db: Database, catalog: Catalog, regions: Regions, jobs: JobQueue) -> None:
        self.db = db
        self.catalog = catalog
        self.regions = regions
        self.jobs = jobs

    async def of_version(self, actor: Subject, name: str, version: str) -> VersionRegions:
        await self.catalog.version(actor, name, version)  # NotFound unless the actor sees it
        async with self.db.read() as conn:
            version_id = await self._version_id(conn, name, version)
            return await self._view(conn, name, version, version_id)

    async def add(self, actor: Subject, name: str, version: str, region: str) -> VersionRegions:
        self.regions.get(region)  # NotFound for a region not configured
        async with self.db.write() as conn:
            await self.catalog.writable(conn, actor, name, "maintainer")
            version_id = await self._version_id(conn, name, version)
            await self._materialize(conn, version_id)
            row = await self._row(conn, version_id, region)
            if row is not None and (
                row.status == "available" or (row.status == "copying" and not _lost(row))
            ):
                return await self._view(conn, name, version, version_id)
            if row is not None and row.status == "removing":
                raise Conflict(f"{name}:{version} is being removed from {region}; add it again once removed")
            values = _fresh("copying")
            if row is None:
                await conn.execute(
                    version_regions.insert().values(version_id=version_id, region=region, **values)
                )
            else:
                await conn.execute(_where(update(version_regions), version_id, region).values(**values))
        job_id = await self.jobs.enqueue(
            JOB_KIND,
            {"version_id": version_id, "region": region},
            max_attempts=5,
            dedupe_key=job_key(version_id, region),
        )
        async with self.db.write() as conn:
            await conn.execute(_where(update(version_regions), version_id, region).values(job_id=job_id))
            return await self._view(conn, name, version, version_id)

    async def remove(self, actor: Subject, name: str, version: str, region: str) -> VersionRegions:
        async with self.db.write() as conn:
            await self.catalog.writable(conn, actor, name, "maintainer")
            version_id = await self._version_id(conn, name, version)
            # Removals from the version's regions take turns (a no-op on SQLite, serialised
            # anyway): two at once would each see the other's region available and leave none.
            await conn.execute(
                select(image_versions.c.id)
                .where(image_versions.c.id == version_id)
                .with_for_update(key_share=True)  # FOR NO KEY UPDATE: inserts referencing it go on
            )
            await self._materialize(conn, version_id)
            row = await self._row(conn, version_id, region)
            if row is None:
                raise NotFound(f"{name}:{version} is not in region {region[:40]!r}")
            if row.status == "copying" and not _lost(row):
                raise Conflict(f"{name}:{version} is being copied to {region}; remove it once the copy ends")
            others = await conn.execute(
                select(version_regions.c.region).where(
                    version_regions.c.version_id == version_id,
                    version_regions.c.region != region,
                    version_regions.c.status == "available",
                )
            )
            if others.first() is None:
                raise Conflict(f"{region} is the last region {name}:{version} is available in; it stays")
            await conn.execute(
                _where(update(version_regions), version_id, region).values(
                    status="removing", updated_at=time.time()
                )
            )
            digest = await self._digest(conn, version_id)
            needed = await blobsets.version_blobs(conn, name, digest)
        await self._delete_blobs(version_id, region, [d for d, _ in needed])
        async with self.db.write() as conn:
            await conn.execute(_where(delete(version_regions), version_id, region))
            await blobsets.mirror_names(conn, version_id)
            return await self._view(conn, name, version, version_id)

    async def usage(self, actor: Subject) -> list[RegionUsage]:
        """Every configured region; the blobs and bytes each holds, for platform admins."""
        result = []
        async with self.db.read() as conn:
            for name in self.regions.names:
                count, size = (None, None)
                if actor.is_admin:
                    count, size = await blobsets.bytes_held(conn, name, self.regions.default.name)
                result.append(
                    RegionUsage(
                        name, name == self.regions.default.name, name == self.regions.local.name, count, size
                    )
                )
        return result

    async def _delete_blobs(self, version_id: int, region: str, digests: list[str]) -> None:
        storage = None
        with contextlib.suppress(NotFound):
            storage = self.regions.get(region).storage
        for digest in digests:
            async with self.db.write() as conn:
                held = await blobsets.holders(conn, digest, lock=True)  # removals of it take turns
                if region not in held or held == [region]:
                    continue  # not there, or the only copy: kept
                if await blobsets.needed_elsewhere(
                    conn, digest, region, self.regions.default.name, version_id
                ):
                    continue
                await conn.execute(
                    delete(region_blobs).where(
                        region_blobs.c.region == region, region_blobs.c.digest == digest
                    )
                )
            if storage is not None:  # after the row: a reader never picks a region without the bytes
                with contextlib.suppress(PathNotFound):
                    await storage.delete(blob_path_of(digest))

    async def _materialize(self, conn: Connection, version_id: int) -> None:
        """A version without rows lives in the default region: write that down first."""
        found = await conn.execute(
            select(version_regions.c.region).where(version_regions.c.version_id == version_id)
        )
        if found.first() is None:
            values = _fresh("available")
            await conn.execute(
                version_regions.insert().values(
                    version_id=version_id, region=self.regions.default.name, **values
                )
            )

    async def _version_id(self, conn: Connection, name: str, version: str) -> int:
        row = (
            await conn.execute(
                select(image_versions.c.id, image_versions.c.source, image_versions.c.digest)
                .join(images, images.c.id == image_versions.c.image_id)
                .where(images.c.name == name, image_versions.c.version == version)
            )
        ).first()
        if row is None:
            raise NotFound(f"image {name!r} has no version {version!r}")
        if row.source != "internal" or not row.digest:
            raise Conflict(
                f"{name}:{version} is not stored in Dockyard; only its stored versions have regions"
            )
        return int(row.id)

    async def _digest(self, conn: Connection, version_id: int) -> str:
        return str(
            (
                await conn.execute(select(image_versions.c.digest).where(image_versions.c.id == version_id))
            ).scalar_one()
        )

    async def _row(self, conn: Connection, version_id: int, region: str) -> Any:
        return (await conn.execute(_where(_with_job(select(version_regions)), version_id, region))).first()

    async def _view(self, conn: Connection, name: str, version: str, version_id: int) -> VersionRegions:
        rows = (
            await conn.execute(
                _with_job(select(version_regions))
                .where(version_regions.c.version_id == version_id)
                .order_by(version_regions.c.region)
            )
        ).all()
        if not rows:
            default = VersionRegion(self.regions.default.name, "available", None, 0, 0, 0, 0, None, None)
            return VersionRegions(name, version, [default])
        return VersionRegions(
            name,
            version,
            [
                VersionRegion(
                    r.region,
                    "failed" if _lost(r) else r.status,
                    (r.job_error or "the copy's job ended") if _lost(r) else r.reason,
                    r.bytes_done,
                    r.bytes_total,
                    r.blobs_done,
                    r.blobs_total,
                    r.job_id,
                    r.updated_at,
                )
                for r in rows
            ],
        )


def _with_job(stmt: Select[Any]) -> Select[Any]:
    """With ``ended``: the copy's job ended without the copy recording it (its worker was stopped
    more often than it may be), and the job's error: shown as failed, and a new add starts over."""
    ended = jobs.c.status.in_(FINISHED)
    return stmt.add_columns(ended.label("ended"), jobs.c.error.label("job_error")).outerjoin(
        jobs, jobs.c.id == version_regions.c.job_id
    )


def _lost(row: Any) -> bool:
    return row.status == "copying" and bool(row.ended)


def _where(stmt: Any, version_id: int, region: str) -> Any:
    return stmt.where(version_regions.c.version_id == version_id, version_regions.c.region == region)


def _fresh(status: str) -> dict[str, Any]:
    return {
        "status": status,
        "reason": None,
        "bytes_done": 0,
        "bytes_total": 0,
        "blobs_done": 0,
        "blobs_total": 0,
        "job_id": None,
        "updated_at": time.time(),
    }


def blob_path_of(digest: str) -> str:
    return blob_path(Digest(digest))
