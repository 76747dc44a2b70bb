"""Each version's signature check, kept in ``signature_checks`` so the ``signed`` filter is SQL.

Checked again when a signature is pushed or deleted (a handler of the registry's outbox, wired
in :mod:`dockyard.app` after the catalog's: it checks after the event's transaction committed,
wherever and whenever the event is applied, so the version exists, and a version pushed after
its signature is checked too) and when the workspace's trusted keys change (:mod:`.keys`).
The signatures are the cosign ``sha256-<hex>.sig`` tag's manifest and the OCI referrers whose
artifactType says signature (:mod:`dockyard.catalog.accessories`); each simple-signing layer is verified by
:mod:`.cosign`."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, select

from dockyard.auth.tables import repositories
from dockyard.catalog.accessories import kind_of_artifact
from dockyard.catalog.sync import is_digest_tag
from dockyard.catalog.tables import image_versions, images
from dockyard.db.engine import Connection, Database
from dockyard.marks import cosign
from dockyard.marks.tables import signature_checks, trusted_keys
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidValue
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import BlobUnknown, ManifestUnknown
from dockyard.registry.events import Event, ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.registry.manifests import ManifestService
from dockyard.registry.tables import manifests, tags

log = logging.getLogger("dockyard.marks")
MAX_SIGNATURES = 20  # signature manifests read per version
MAX_RECHECK = 10_000  # versions checked again when a workspace's keys change


def subject_of_tag(tag: str) -> str | None:
    """The digest a cosign ``sha256-<hex>.sig`` tag signs."""
    if is_digest_tag(tag) and tag.endswith(".sig"):
        return "sha256:" + tag.removeprefix("sha256-").removesuffix(".sig")
    return None


async def workspace_keys(conn: Connection, workspace_id: int) -> list[cosign.ParsedKey]:
    rows = await conn.execute(select(trusted_keys.c.pem).where(trusted_keys.c.workspace_id == workspace_id))
    return [cosign.parse_key(row[0]) for row in rows]


class Signatures:
    def __init__(self, db: Database, manifest_service: ManifestService, blobs: BlobService) -> None:
        self.db = db
        self.manifests = manifest_service
        self.blobs = blobs

    async def handle(self, conn: Connection, event: Event) -> Callable[[], Awaitable[None]]:
        """The outbox handler: nothing in the event's transaction, the check after its commit."""

        async def check() -> None:
            await self(event)

        return check

    async def __call__(self, event: Event) -> None:
        try:
            await self._heard(event)
        except Exception:  # a listener never fails the push it hears of; the next push retries
            log.exception("checking the signatures after %s failed", type(event).__name__)

    async def _heard(self, event: Event) -> None:
        if isinstance(event, ManifestPushed | TagDeleted):
            tag = event.tag
            subject = subject_of_tag(tag) if tag else None
            if subject is not None:
                await self.recheck(event.repository, subject)
                return
        if isinstance(event, ManifestPushed):
            async with self.db.read() as conn:
                referred = (
                    await conn.execute(
                        select(manifests.c.subject_digest)
                        .join(repositories, repositories.c.id == manifests.c.repository_id)
                        .where(repositories.c.name == event.repository, manifests.c.digest == event.digest)
                    )
                ).scalar()
            if referred:
                await self.recheck(event.repository, referred)
            elif event.tag is not None and not is_digest_tag(event.tag):
                await self.recheck(event.repository, event.digest)  # a version signed before its push
        elif isinstance(event, ManifestDeleted):
            async with self.db.read() as conn:
                checked = await conn.execute(
                    select(image_versions.c.digest)
                    .join(signature_checks, signature_checks.c.version_id == image_versions.c.id)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(
                        images.c.name == event.repository, signature_checks.c.signature_digest == event.digest
                    )
                )
                digests = sorted({row[0] for row in checked})
            for digest in digests:
                await self.recheck(event.repository, digest)

    async def _signature_manifests(self, conn: Connection, repository: str, digest: str) -> list[str]:
        hex_ = digest.removeprefix("sha256:")
        repo = select(repositories.c.id).where(repositories.c.name == repository).scalar_subquery()
        tagged = await conn.execute(
            select(tags.c.manifest_digest).where(
                tags.c.repository_id == repo, tags.c.name == f"sha256-{hex_}.sig"
            )
        )
        found = [row[0] for row in tagged]
        referrers = await conn.execute(
            select(manifests.c.digest, manifests.c.artifact_type)
            .where(manifests.c.repository_id == repo, manifests.c.subject_digest == digest)
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        found += [
            d for d, artifact in referrers if kind_of_artifact(artifact) == "signature" and d not in found
        ]
        return found[:MAX_SIGNATURES]

    async def _outcomes(
        self, repository: str, digest: str, signatures: list[str], keys: list[cosign.ParsedKey]
    ) -> list[tuple[cosign.Outcome, str]]:
        found = []
        for signature in signatures:
            try:
                stored = await self.manifests.get(repository, signature)
            except ManifestUnknown:
                continue
            for layer in cosign.signature_layers(stored.content):
                try:
                    payload = await self.blobs.read(
                        repository, Digest.parse(layer.payload_digest), cosign.MAX_PAYLOAD
                    )
                except (BlobUnknown, InvalidValue):
                    found.append(
                        (
                            cosign.Outcome(cosign.INVALID, detail="the payload is missing or too large"),
                            signature,
                        )
                    )
                    continue
                found.append((cosign.check(payload, layer.signature, digest, keys), signature))
        return found

    async def recheck(self, repository: str, digest: str) -> None:
        """Check the signatures of the versions named ``digest`` in ``repository`` and keep the result."""
        if not digest.startswith("sha256:"):
            return
        async with self.db.read() as conn:
            versions = (
                await conn.execute(
                    select(image_versions.c.id, images.c.workspace_id)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(images.c.name == repository, image_versions.c.digest == digest)
                )
            ).all()
            if not versions:
                return
            keys = await workspace_keys(conn, versions[0][1])
            signatures = await self._signature_manifests(conn, repository, digest)
        outcomes = await self._outcomes(repository, digest, signatures, keys)
        ids = [row[0] for row in versions]
        async with self.db.write() as conn:
            await conn.execute(delete(signature_checks).where(signature_checks.c.version_id.in_(ids)))
            if not outcomes:
                return
            best = cosign.best([outcome for outcome, _ in outcomes])
            by = next(signature for outcome, signature in outcomes if outcome is best)
            now = time.time()
            await conn.execute(
                signature_checks.insert(),
                [
                    {
                        "version_id": version_id,
                        "digest": digest,
                        "state": best.state,
                        "key_id": best.key_id,
                        "signature_digest": by,
                        "detail": best.detail[:500],
                        "checked_at": now,
                    }
                    for version_id in ids
                ],
            )

    async def recheck_workspace(self, workspace_id: int) -> int:
        """Check again every signed version of the workspace (its keys changed); how many."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(images.c.name, image_versions.c.digest)
                    .join(image_versions, image_versions.c.image_id == images.c.id)
                    .join(signature_checks, signature_checks.c.version_id == image_versions.c.id)
                    .where(images.c.workspace_id == workspace_id)
                    .distinct()
                    .limit(MAX_RECHECK)
                )
            ).all()
        for name, digest in rows:
            await self.recheck(name, digest)
        return len(rows)
