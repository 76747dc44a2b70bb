"""Pushes become catalog versions: the registry emits events, this listens (wired in
:mod:`dockyard.app`; the registry never imports the catalog).

A tag push creates or updates the version named after the tag with status ``pending`` and
queues its inspection (:mod:`.inspections`), which sets ``available``, or ``failed`` with the
reason. Untagged pushes (index children, signatures, SBOMs), artifacts that are not
container images, and the tags cosign and the OCI referrers fallback name after the image they
belong to (``sha256-<hex>``, ``sha256-<hex>.sig``, ``.att``, ``.sbom``) are not catalog versions:
the registry keeps and serves them, the catalog does not list a signature as a version.
Deleting the tag or the manifest removes the version. A tag push never replaces an external
version: the push admission (:mod:`.admission`) refuses it, and should one slip through (a
registration racing the push) the external version stays and its history says so. The one
exception is the push that completes the version's import by URL (:mod:`.imports`): it turns
the version internal here, in the push's transaction, and the history keeps its provenance.
"""

from __future__ import annotations

import json
import logging
import re
import time

from sqlalchemy import delete, select, update

from dockyard.auth.tables import repositories
from dockyard.catalog.imports import converted
from dockyard.catalog.inspections import Inspections
from dockyard.catalog.service import create_image, record_event
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import EXTERNAL, INTERNAL
from dockyard.db.engine import Connection, Database
from dockyard.registry.events import Actor, Event, ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.registry.outbox import AfterCommit

log = logging.getLogger("dockyard.catalog")

# Tags that name another manifest's digest: cosign's signatures, attestations and SBOMs, and
# the OCI 1.1 referrers tag schema (for registries without the referrers API).
DIGEST_TAG = re.compile(r"sha256-[0-9a-f]{64}(?:\.(?:sig|att|sbom))?")


def is_digest_tag(tag: str) -> bool:
    """Whether ``tag`` names another manifest (a signature's, an attestation's or an SBOM's)."""
    return DIGEST_TAG.fullmatch(tag) is not None


def _who(actor: Actor | None) -> str:
    """The name the catalog's history gives the actor; "system" when no one acted."""
    return actor.principal.name if actor is not None else "system"


class CatalogSync:
    def __init__(self, db: Database, inspections: Inspections) -> None:
        self.db = db
        self.inspections = inspections

    async def __call__(self, event: Event) -> None:
        """Apply ``event`` in a transaction of its own (what the registry's outbox does in
        the row's transaction, :meth:`apply`)."""
        async with self.db.write() as conn:
            after = await self.apply(conn, event)
        if after is not None:
            await after()

    async def apply(self, conn: Connection, event: Event) -> AfterCommit | None:
        """A handler of the registry's outbox: the change in ``conn``; the inspection to
        queue once it committed."""
        if isinstance(event, ManifestPushed):
            if event.tag is not None and not is_digest_tag(event.tag):
                return await self._pushed(conn, event)
        elif isinstance(event, TagDeleted):
            await self._removed(conn, event.repository, _who(event.actor), tag=event.tag)
        elif isinstance(event, ManifestDeleted):
            await self._removed(conn, event.repository, _who(event.actor), digest=event.digest)
        return None

    async def _pushed(self, conn: Connection, event: ManifestPushed) -> AfterCommit | None:
        who = _who(event.actor)
        now = time.time()
        tag = event.tag
        assert tag is not None
        repo = (
            await conn.execute(
                select(repositories.c.workspace_id).where(repositories.c.name == event.repository)
            )
        ).first()
        if repo is None or repo[0] is None:
            return None
        image = (await conn.execute(select(images.c.id).where(images.c.name == event.repository))).first()
        if image is None:
            image_id = await create_image(conn, repo[0], event.repository, who, INTERNAL, now)
        else:
            image_id = image[0]
        existing = (
            await conn.execute(
                select(
                    image_versions.c.id, image_versions.c.source, image_versions.c.external_reference
                ).where(image_versions.c.image_id == image_id, image_versions.c.version == event.tag)
            )
        ).first()
        provenance = None
        if existing is not None and existing[1] == EXTERNAL:
            provenance = await converted(conn, image_id, tag, event.digest, now)
        if existing is not None and existing[1] == EXTERNAL and provenance is None:
            log.warning(
                "%s:%s was pushed but is an external version (%s); the catalog keeps the external one",
                event.repository,
                event.tag,
                existing[2],
            )
            await record_event(
                conn,
                image_id,
                who,
                "push.ignored",
                event.tag,
                digest=event.digest,
                reason=f"the version is external ({existing[2]}); the catalog keeps it",
            )
            return None
        values = {
            "source": INTERNAL,
            "status": "pending",
            "status_reason": None,
            "digest": event.digest,
            "media_type": event.media_type,
            "external_reference": None,
            "imported_from": None if provenance is None else json.dumps(provenance),
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
        if provenance is not None:
            await record_event(conn, image_id, who, "imported", event.tag, digest=event.digest, **provenance)
        else:
            await record_event(conn, image_id, who, "pushed", event.tag, digest=event.digest)

        async def inspect() -> None:
            # Queued after the version's commit: a crash between the two leaves a pending
            # version with no job, which the inspections' sweep finds and queues.
            await self.inspections.enqueue(event.repository, image_id, tag, event.digest)

        return inspect

    async def _removed(
        self, conn: Connection, repository: str, who: str, tag: str | None = None, digest: str | None = None
    ) -> None:
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
