"""Pushes become catalog versions: the registry emits events, this listens (wired in
:mod:`dockyard.app`; the registry never imports the catalog).

A tag push creates or updates the version named after the tag with status ``pending``;
a background task then reads the image (platforms, sizes, uncompressed layer sizes) and
sets ``available``, or ``failed`` with the reason (for example: no linux/amd64 where the
workspace requires it). Untagged pushes (index children, signatures, SBOMs) and artifacts
that are not container images are not catalog versions. Deleting the tag or the manifest
removes the version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sqlalchemy import delete, select, update

from dockyard.auth.base import current_principal
from dockyard.catalog.inspect import AMD64_HELP, ContentSource, ImageFacts, has_amd64, inspect_image
from dockyard.catalog.measure import uncompressed_size
from dockyard.catalog.service import Catalog, create_image, record_event
from dockyard.catalog.views import INTERNAL
from dockyard.db.engine import Database
from dockyard.db.tables import blob_uncompressed, image_versions, images, repositories
from dockyard.registry.events import Event, ManifestDeleted, ManifestPushed, TagDeleted

log = logging.getLogger("dockyard.catalog")

Streamer = Callable[[str], AsyncIterator[bytes]]


class CatalogSync:
    def __init__(self, db: Database, catalog: Catalog, source: ContentSource, stream: Streamer) -> None:
        self.db = db
        self.catalog = catalog
        self.source = source
        self.stream = stream
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):  # cancelled: nothing to report
                await task

    async def settle(self) -> None:
        """Wait for background inspections (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def resume(self) -> int:
        """Inspect versions left ``pending`` by a server that stopped mid-inspection."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        images.c.id,
                        images.c.name,
                        images.c.workspace_id,
                        image_versions.c.version,
                        image_versions.c.digest,
                    )
                    .join(image_versions, image_versions.c.image_id == images.c.id)
                    .where(image_versions.c.source == INTERNAL, image_versions.c.status == "pending")
                )
            ).all()
        for image_id, name, workspace_id, version, digest in rows:
            self._spawn(self._inspect(name, version, digest, image_id, workspace_id))
        return len(rows)

    async def __call__(self, event: Event) -> None:
        if isinstance(event, ManifestPushed):
            if event.tag is not None:
                await self._pushed(event)
        elif isinstance(event, TagDeleted):
            await self._removed(event.repository, tag=event.tag)
        elif isinstance(event, ManifestDeleted):
            await self._removed(event.repository, digest=event.digest)

    async def _pushed(self, event: ManifestPushed) -> None:
        principal = current_principal.get()
        who = principal.name if principal is not None else "system"
        now = time.time()
        assert event.tag is not None
        async with self.db.write() as conn:
            repo = (
                await conn.execute(
                    select(repositories.c.workspace_id).where(repositories.c.name == event.repository)
                )
            ).first()
            if repo is None or repo[0] is None:
                return
            image = (await conn.execute(select(images.c.id).where(images.c.name == event.repository))).first()
            if image is None:
                image_id = await create_image(conn, repo[0], event.repository, who, INTERNAL, now)
            else:
                image_id = image[0]
            existing = (
                await conn.execute(
                    select(image_versions.c.id, image_versions.c.source).where(
                        image_versions.c.image_id == image_id, image_versions.c.version == event.tag
                    )
                )
            ).first()
            values = {
                "source": INTERNAL,
                "status": "pending",
                "status_reason": None,
                "digest": event.digest,
                "media_type": event.media_type,
                "external_reference": None,
                "updated_at": now,
            }
            if existing is None:
                await conn.execute(
                    image_versions.insert().values(
                        image_id=image_id, version=event.tag, created_at=now, created_by=who, **values
                    )
                )
            else:
                await conn.execute(
                    update(image_versions).where(image_versions.c.id == existing[0]).values(**values)
                )
            await conn.execute(
                update(images)
                .where(images.c.id == image_id)
                .values(updated_at=now, updated_by=who, built_at=now, built_by=who)
            )
            await record_event(conn, image_id, who, "pushed", event.tag, digest=event.digest)
        self._spawn(self._inspect(event.repository, event.tag, event.digest, image_id, repo[0]))

    async def _inspect(
        self, repository: str, tag: str, digest: str, image_id: int, workspace_id: int
    ) -> None:
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
        uncompressed = await self._uncompressed(facts)
        async with self.db.read() as conn:
            required = await self.catalog.require_amd64(conn, workspace_id)
        warnings = []
        status, reason = "available", None
        if not has_amd64(facts.platforms):
            warnings.append({"code": "no_amd64", "message": AMD64_HELP})
            if required:
                status, reason = "failed", "the workspace requires linux/amd64: " + AMD64_HELP
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
        )

    async def _uncompressed(self, facts: ImageFacts) -> int | None:
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
                size = await uncompressed_size(self.stream(digest), media_type)
            except Exception as exc:
                log.warning("could not measure layer %s: %s", digest, exc)
                return None
            async with self.db.write() as conn:
                stmt = self.db.insert(blob_uncompressed).values(digest=digest, size=size)
                await conn.execute(stmt.on_conflict_do_nothing(index_elements=["digest"]))
            total += size
        return total + sum(facts.other_blobs.values())

    async def _finish(
        self, image_id: int, tag: str, digest: str, *, status: str, reason: str | None, **values: Any
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
                await record_event(conn, image_id, "system", "inspected", tag, status=status, reason=reason)

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

    async def _removed(self, repository: str, tag: str | None = None, digest: str | None = None) -> None:
        principal = current_principal.get()
        who = principal.name if principal is not None else "system"
        async with self.db.write() as conn:
            image = (await conn.execute(select(images.c.id).where(images.c.name == repository))).first()
            if image is None:
                return
            where = [image_versions.c.image_id == image[0], image_versions.c.source == INTERNAL]
            where.append(
                image_versions.c.version == tag if tag is not None else image_versions.c.digest == digest
            )
            gone = (await conn.execute(select(image_versions.c.version).where(*where))).all()
            if not gone:
                return
            await conn.execute(delete(image_versions).where(*where))
            for (version,) in gone:
                await record_event(conn, image[0], who, "version.deleted", version)
