"""The ``regions.copy`` job: a version's blobs streamed into a region, one pass each, verified.

Resumable: a blob the region holds already (an earlier attempt's, or another version's) is
skipped and counted as done, so a copy killed half-way goes on where it stopped."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update

from dockyard.catalog.tables import image_versions, images
from dockyard.db.engine import Database
from dockyard.jobs.worker import JobContext
from dockyard.oci.digest import Digest
from dockyard.regions import blobsets
from dockyard.regions.tables import version_regions
from dockyard.registry.paths import blob_path
from dockyard.registry.regions import Region, Regions
from dockyard.registry.tables import region_blobs

GATE_ENV = "DOCKYARD_TEST_REGION_GATE"
Hook = Callable[[], Awaitable[None]]


class CopyFailed(Exception):
    pass


class RegionCopier:
    """``after_blob``: a test seam awaited after each blob copied (crash tests stop there)."""

    def __init__(self, db: Database, regions: Regions, after_blob: Hook | None = None) -> None:
        self.db = db
        self.regions = regions
        self.after_blob = after_blob

    async def handle(self, ctx: JobContext) -> None:
        version_id, region = int(ctx.job.payload["version_id"]), str(ctx.job.payload["region"])
        where = (version_regions.c.version_id == version_id) & (version_regions.c.region == region)
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(version_regions.c.status, images.c.name, image_versions.c.digest)
                    .join(image_versions, image_versions.c.id == version_regions.c.version_id)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(where)
                )
            ).first()
            if row is None or row.status != "copying":
                return
            needed = await blobsets.version_blobs(conn, row.name, row.digest)
        try:
            await self._copy(ctx, version_id, region, needed)
        except Exception as exc:
            async with self.db.write() as conn:
                reason = f"{type(exc).__name__}: {exc}"[:2000]
                await conn.execute(
                    update(version_regions)
                    .where(where)
                    .values(status="failed", reason=reason, updated_at=time.time())
                )
            raise

    async def _copy(
        self, ctx: JobContext, version_id: int, region: str, needed: list[tuple[str, int]]
    ) -> None:
        where = (version_regions.c.version_id == version_id) & (version_regions.c.region == region)
        target = self.regions.get(region)
        done_bytes = done_blobs = 0
        total = sum(size for _, size in needed)

        async def report() -> None:
            progress = {
                "bytes_done": done_bytes,
                "bytes_total": total,
                "blobs_done": done_blobs,
                "blobs_total": len(needed),
            }
            async with self.db.write() as conn:
                await conn.execute(
                    update(version_regions).where(where).values(**progress, updated_at=time.time())
                )
            await ctx.heartbeat(progress)

        await report()
        for digest, size in needed:
            async with self.db.read() as conn:
                held = await blobsets.holders(conn, digest)
            if region not in held:
                source = self._source(held)
                await self._stream(source, target, digest, size)
                async with self.db.write() as conn:
                    fresh = [] if held else [{"region": self.regions.default.name, "digest": digest}]
                    rows = [*fresh, {"region": region, "digest": digest}]
                    stmt = self.db.insert(region_blobs).values(rows).on_conflict_do_nothing()
                    await conn.execute(stmt)
                done_blobs, done_bytes = done_blobs + 1, done_bytes + size
                await report()
                if self.after_blob is not None:
                    await self.after_blob()
            else:
                done_blobs, done_bytes = done_blobs + 1, done_bytes + size
        await report()
        async with self.db.write() as conn:
            await conn.execute(update(version_regions).where(where).values(status="available", reason=None))
            await blobsets.mirror_names(conn, version_id)

    def _source(self, held: list[str]) -> Region:
        if not held:
            return self.regions.default
        for name in [self.regions.local.name, self.regions.default.name, *held]:
            if name in held and name in self.regions.names:
                return self.regions.get(name)
        raise CopyFailed(f"no configured region holds the blob (held by {', '.join(held)})")

    async def _stream(self, source: Region, target: Region, digest: str, size: int) -> None:
        parsed = Digest(digest)
        scratch = f"uploads/region-{uuid.uuid4().hex}/data"
        writer = await target.storage.writer(scratch)
        hasher = hashlib.new(parsed.algorithm)
        try:
            async for chunk in source.storage.reader(blob_path(parsed)):
                hasher.update(chunk)
                await writer.write(chunk)
            if hasher.hexdigest() != parsed.hex or writer.size != size:
                raise CopyFailed(f"blob {digest} read from {source.name} does not match its digest or size")
            await writer.commit()
        except BaseException:
            await writer.cancel()
            raise
        await target.storage.move(scratch, blob_path(parsed))
