"""Verifying external versions against their registry, and what compute nodes need:
the versions a user may run, and ``name:version`` resolved to a digest-pinned reference.

The upstream client (:mod:`dockyard.upstream`, a lower layer) is handed in as a
:class:`~dockyard.upstream.verifier.Resolver`, wired in :mod:`dockyard.app` (tests hand in fakes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update

from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.catalog.inspect import AMD64_HELP, has_amd64
from dockyard.catalog.service import Catalog, actor_name, record_event
from dockyard.catalog.sharing import image_visibility, private_upstream_message
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import EXTERNAL, PUBLIC, RUNNABLE, VersionView
from dockyard.errors import Conflict, Invalid, PrivateUpstream
from dockyard.oci.reference import ReferenceWarning, WarningCode, parse_reference
from dockyard.registry.tables import manifests
from dockyard.upstream.credentials import CredentialStore
from dockyard.upstream.profiles import host_aliases
from dockyard.upstream.tables import upstream_credentials
from dockyard.upstream.verifier import Resolved, Resolver


@dataclass(frozen=True)
class Runnable:
    image: str
    version: str
    source: str
    kind: str
    status: str
    platforms: list[str]
    pull: str  # what to pull: pinned to the digest when it is known


@dataclass(frozen=True)
class Pinned:
    image: str
    version: str
    digest: str
    reference: str  # host/repository@sha256:...
    source: str


class Verification:
    def __init__(self, catalog: Catalog, resolver: Resolver, credentials: CredentialStore) -> None:
        self.catalog = catalog
        self.resolver = resolver
        self.credentials = credentials

    async def verify(self, actor: Subject, name: str, version: str) -> VersionView:
        """Check an external version now: record its digest, platforms and size, or why it failed."""
        found = await self.catalog.version(actor, name, version)
        if found.source != EXTERNAL or found.external_reference is None:
            raise Conflict("only external versions are verified; internal ones are checked when pushed")
        async with self.catalog.db.read() as conn:
            image = (await conn.execute(select(images.c.workspace_id).where(images.c.name == name))).one()
        result = await self.resolver(found.external_reference, image[0])
        now = time.time()
        values: dict[str, object] = {"checked_at": now}
        if isinstance(result, Resolved):
            if found.digest and result.digest != found.digest and "@" in found.external_reference:
                values.update(
                    status="unreachable", status_reason=f"the pinned digest {found.digest} is gone upstream"
                )
            else:
                warnings = [w.__dict__ for w in found.warnings if w.code != "no_amd64"]
                ref = parse_reference(found.external_reference)
                for w in warnings:
                    if w["code"] == WarningCode.MOVING_TAG:
                        w["message"] = (
                            ReferenceWarning(WarningCode.MOVING_TAG, str(w["message"]), ref.name)
                            .with_digest(result.digest)
                            .message
                        )
                if not has_amd64(result.platforms):
                    warnings.append({"code": "no_amd64", "message": AMD64_HELP})
                values.update(
                    status="reachable",
                    status_reason=None,
                    private_upstream=result.private,
                    digest=result.digest,
                    media_type=result.media_type,
                    platforms=json.dumps(result.platforms),
                    compressed_size=result.compressed_size,
                    warnings=json.dumps(warnings),
                )
        else:
            values.update(status="unreachable", status_reason=f"{result.kind}: {result.message}")
        async with self.catalog.db.write() as conn:
            image = (await conn.execute(select(images.c.id).where(images.c.name == name))).one()
            await conn.execute(
                update(image_versions)
                .where(image_versions.c.image_id == image[0], image_versions.c.version == version)
                .values(**values)
            )
            await record_event(
                conn,
                image[0],
                actor_name(actor),
                "verified",
                version,
                status=values.get("status"),
                reason=values.get("status_reason"),
            )
        return await self.catalog.version(actor, name, version)

    async def check_platforms(
        self, actor: Subject, name: str, version: str, *, new_image: bool = False
    ) -> VersionView:
        """Verify at registration where the workspace requires linux/amd64 (refused without it).

        A refused registration leaves nothing behind: the version, and the image too when this
        registration created it. The registering developer may not delete versions, so this
        does not go through the maintainers' delete."""
        checked = await self.verify(actor, name, version)
        if checked.status == "reachable" and checked.has_amd64 is False:
            await self._forget(actor, name, version, new_image=new_image, reason="no linux/amd64")
            raise Invalid("refused by the workspace policy: " + AMD64_HELP)
        return checked

    async def keep_private_upstream_private(
        self, actor: Subject, created: VersionView, *, new_image: bool
    ) -> VersionView:
        """Refuse (409, nothing left behind) an external version of a PUBLIC image whose
        upstream refuses anonymous access and needed the workspace's registry profile: the
        credentials would otherwise serve everyone. Asked only when a profile with
        credentials exists for the reference's registry (else nothing could be private)."""
        if created.source != EXTERNAL or created.external_reference is None:
            return created
        host = parse_reference(created.external_reference).registry
        async with self.catalog.db.read() as conn:
            if await image_visibility(conn, created.image) != PUBLIC:
                return created
            workspace_id = (
                await conn.execute(select(images.c.workspace_id).where(images.c.name == created.image))
            ).scalar_one()
            owner = upstream_credentials.c.workspace_id
            kept = (
                await conn.execute(
                    select(upstream_credentials.c.id)
                    .where(
                        upstream_credentials.c.registry.in_(host_aliases(host)),
                        upstream_credentials.c.username != "",
                        or_(owner == workspace_id, owner.is_(None)),
                    )
                    .limit(1)
                )
            ).first()
        if kept is None:
            return created
        checked = await self.verify(actor, created.image, created.version)
        async with self.catalog.db.read() as conn:
            private = (
                await conn.execute(
                    select(image_versions.c.private_upstream)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(images.c.name == created.image, image_versions.c.version == created.version)
                )
            ).scalar_one()
        if private:
            await self._forget(
                actor,
                created.image,
                created.version,
                new_image=new_image,
                reason="private upstream, public image",
                drop_repository=True,
            )
            raise PrivateUpstream(private_upstream_message(created.image, host))
        return checked

    async def _forget(
        self,
        actor: Subject,
        name: str,
        version: str,
        *,
        new_image: bool,
        reason: str,
        drop_repository: bool = False,
    ) -> None:
        """A refused registration leaves nothing behind: the version, and the image too when this
        registration created it. The registering developer may not delete versions, so this
        does not go through the maintainers' delete."""
        async with self.catalog.db.write() as conn:
            image_id = (await conn.execute(select(images.c.id).where(images.c.name == name))).scalar_one()
            if new_image:
                await conn.execute(delete(images).where(images.c.id == image_id))
                if drop_repository:  # made by this registration: nothing pushed to it
                    holds = select(manifests.c.digest).where(manifests.c.repository_id == repositories.c.id)
                    await conn.execute(
                        delete(repositories).where(repositories.c.name == name, ~holds.exists())
                    )
            else:
                await conn.execute(
                    delete(image_versions).where(
                        image_versions.c.image_id == image_id, image_versions.c.version == version
                    )
                )
                await record_event(
                    conn, image_id, actor_name(actor), "version.refused", version, reason=reason
                )

    async def runnable(
        self,
        actor: Subject,
        *,
        registry_host: str,
        workspace: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        platform: str | None = None,
    ) -> list[Runnable]:
        page = await self.catalog.search(
            actor, workspace=workspace, kind=kind, status=status, platform=platform, limit=10_000
        )
        strict = await self.catalog.amd64_workspaces(sorted({image.workspace for image in page.items}))
        result = []
        for image in page.items:
            for v in image.versions:
                if v.status not in RUNNABLE or (status is not None and v.status != status):
                    continue
                if image.workspace in strict and v.has_amd64 is False:
                    continue  # resolve refuses it (below)
                result.append(
                    Runnable(
                        image.name,
                        v.version,
                        v.source,
                        v.kind,
                        v.status,
                        v.platforms,
                        _pull(v, registry_host),
                    )
                )
        return result

    async def resolve(self, actor: Subject, name: str, version: str, registry_host: str) -> Pinned:
        """``name:version`` as a digest-pinned pull reference; external versions are
        verified on use when they have not been yet (or are unreachable)."""
        found = await self.catalog.version(actor, name, version)
        if found.source == EXTERNAL and found.status != "reachable":
            found = await self.verify(actor, name, version)
        if found.status not in ("available", "reachable") or not found.digest:
            raise Conflict(
                f"{name}:{version} cannot be run: {found.status} ({found.status_reason or 'no digest yet'})"
            )
        workspace = name.split("/", 1)[0]
        if not found.has_amd64 and await self.catalog.amd64_workspaces([workspace]):
            platforms = ", ".join(found.platforms) or "none known"
            raise Conflict(
                f"{name}:{version} cannot be run: the workspace {workspace!r} requires linux/amd64 and "
                f"this version has {platforms}; {AMD64_HELP}"
            )
        return Pinned(name, version, found.digest, _pinned(found, registry_host), found.source)


def _pinned(version: VersionView, registry_host: str) -> str:
    if version.source == EXTERNAL and version.external_reference:
        ref = parse_reference(version.external_reference)
        return f"{ref.name}@{version.digest}"
    return f"{registry_host}/{version.image}@{version.digest}"


def _pull(version: VersionView, registry_host: str) -> str:
    if version.digest:
        return _pinned(version, registry_host)
    return version.external_reference or f"{registry_host}/{version.image}:{version.version}"
