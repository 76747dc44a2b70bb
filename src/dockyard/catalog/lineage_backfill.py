"""The lineage backfill: versions inspected before lineage existed get their layer chains and
base, a batch per job run (``catalog.lineage.backfill``, payload ``{"after": version id}``),
each run queueing the next until none is left. Admins start it (``POST /api/v1/lineage/backfill``).
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select

from dockyard.catalog.inspect import ContentSource, inspect_image
from dockyard.catalog.lineage import Lineage
from dockyard.catalog.tables import image_versions, images, layer_chains
from dockyard.catalog.views import INTERNAL
from dockyard.db.engine import Database
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import JobContext

log = logging.getLogger("dockyard.catalog")

JOB_KIND = "catalog.lineage.backfill"
BATCH = 200
_chained = layer_chains.c.version_id == image_versions.c.id


class LineageBackfill:
    def __init__(self, db: Database, lineage: Lineage, source: ContentSource, queue: JobQueue) -> None:
        self.db = db
        self.lineage = lineage
        self.source = source
        self.queue = queue

    async def start(self, after: int = 0) -> int:
        return await self.queue.enqueue(JOB_KIND, {"after": after}, dedupe_key=f"{JOB_KIND}:{after}")

    async def handle(self, ctx: JobContext) -> None:
        after = int(ctx.job.payload.get("after", 0))
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(image_versions.c.id, images.c.id, images.c.name, image_versions.c.version,
                           image_versions.c.digest)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(
                        image_versions.c.id > after,
                        image_versions.c.source == INTERNAL,
                        image_versions.c.status == "available",
                        ~exists(select(layer_chains.c.depth).where(_chained)),
                    )
                    .order_by(image_versions.c.id)
                    .limit(BATCH)
                )
            ).all()  # fmt: skip
        for _, image_id, name, version, digest in rows:
            try:
                facts = await inspect_image(self.source, name, digest)
            except Exception as exc:  # a version that cannot be read has no lineage
                log.warning("lineage backfill: could not read %s@%s: %s", name, digest, exc)
                continue
            await self.lineage.inspected(image_id, version, digest, facts.layer_ids)
        if len(rows) == BATCH:
            await self.start(rows[-1][0])
