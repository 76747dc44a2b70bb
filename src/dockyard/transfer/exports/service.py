"""Download an image version as a tar: a ``docker load`` archive, or an OCI archive.

Who may download what (Illumina Connected Analytics' rules, issue #5), checked in this order:

1. a signed-in caller (anonymous: 401) whose token, if any, carries the ``pull`` scope;
2. a version the caller can see in the catalog (else 404, exactly as the catalog answers,
   so a private image's existence is not revealed);
3. an **internal** version: an external one is a reference to another registry whose bytes
   Dockyard never stored (409);
4. created by the caller's workspace: the caller holds a role in the image's workspace
   (membership or a team's role, on the workspace or on this repository; a robot's
   permission in its own workspace) or is an admin. Images the caller sees only because
   they were **shared** from another workspace, by being public or by a granted access
   request, may be pulled and run but not downloaded (403): an archive takes a copy out of
   the platform, and that decision belongs to the workspace that owns the image;
5. status ``available`` (409 while ``pending``, or ``failed`` with the reason).

One request downloads one version (one image, or one index in OCI format); there are no
bulk archives. Every request that streams bytes is written to the audit log.

The archive's bytes are a function of the version's manifest digest, the format, the
manifest exported (the platform) and the tag it is given, so those make its ETag: a
resumed download (``Range`` + ``If-Range``) continues only while the tag still names the
same image; after a re-push the server sends the new archive whole.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import select

from dockyard.archive.tarwriter import TarStream
from dockyard.auth import audit
from dockyard.auth.errors import AuthenticationFailed
from dockyard.auth.facts import load_facts
from dockyard.auth.policy import PULL, Facts, Subject, decide
from dockyard.auth.tables import workspaces
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import images
from dockyard.catalog.views import EXTERNAL, VersionView
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.registry.blobs import BlobService
from dockyard.registry.manifests import ManifestService
from dockyard.storage.base import StorageDriver
from dockyard.transfer.exports.plan import DOCKER, FORMATS, OCI, ExportPlanner, normalize_platform

LAYOUT_VERSION = "1"  # part of every ETag: a change to how archives are laid out starts downloads anew


@dataclass(frozen=True)
class ImageArchive:
    image: str
    version: str
    digest: str  # the version's manifest or index
    root: str  # what the archive exports: that manifest, or one platform's
    format: str
    platform: str | None
    reference: str  # host/name:version, the name docker load and podman load give the image
    workspace_id: int
    stream: TarStream

    @property
    def size(self) -> int:
        return self.stream.size

    @property
    def filename(self) -> str:
        suffix = ".oci.tar" if self.format == OCI else ".tar"
        return f"{self.image.replace('/', '_')}_{self.version}{suffix}"

    @property
    def etag(self) -> str:
        key = "\n".join([LAYOUT_VERSION, self.digest, self.format, self.root, self.reference])
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:40] + '"'


class Exports:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        manifests: ManifestService,
        blobs: BlobService,
        storage: StorageDriver,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.planner = ExportPlanner(manifests, blobs, storage)

    async def prepare(
        self,
        actor: Subject,
        name: str,
        version: str,
        *,
        fmt: str = DOCKER,
        platform: str | None = None,
        registry_host: str,
    ) -> ImageArchive:
        """The planned archive of ``name:version``, or the reason the caller may not have it."""
        if actor.is_anonymous:
            raise AuthenticationFailed("sign in to download images")
        if fmt not in FORMATS:
            raise Invalid(f"format is 'docker' or 'oci', not {fmt!r}")
        wanted = None if platform is None or not platform.strip() else normalize_platform(platform)
        if actor.scopes is not None and PULL not in actor.scopes:
            raise Forbidden(
                f"this token's scopes ({', '.join(sorted(actor.scopes))}) do not include pull, "
                "which downloads need"
            )
        found = await self.catalog.version(actor, name, version)  # NotFound when not visible
        label = f"{name}:{version}"
        if found.source == EXTERNAL:
            raise Conflict(
                f"{label} is an external image, a reference to {found.external_reference}; its bytes are "
                "not stored in Dockyard, so only internal images can be downloaded (pull it from there)"
            )
        workspace_id = await self._check_owner(actor, found, label)
        if found.status != "available":
            raise Conflict(_not_available(label, found))
        assert found.digest is not None  # internal versions always name their manifest
        reference = f"{registry_host}/{name}:{version}"
        plan = await self.planner.plan(name, found.digest, fmt, wanted, reference)
        return ImageArchive(
            name, version, found.digest, plan.root, fmt, plan.platform, reference, workspace_id, plan.stream
        )

    async def _check_owner(self, actor: Subject, found: VersionView, label: str) -> int:
        """Rule 4: the image's workspace id, if the caller's own roles reach the image."""
        now = time.time()
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(images.c.workspace_id, workspaces.c.name)
                    .join(workspaces, workspaces.c.id == images.c.workspace_id)
                    .where(images.c.name == found.image)
                )
            ).first()
            if row is None:  # deleted since the catalog showed it
                raise NotFound(f"image {found.image!r} not found")
            workspace_id, workspace = int(row[0]), str(row[1])
            facts = await load_facts(conn, actor, found.image, now)
        if actor.is_admin or PULL in decide(actor, _own_roles_only(facts), now).actions:
            return workspace_id
        if facts.public:
            how = "it is public"
        elif facts.grants:
            how = "your access to it was granted on request"
        else:
            how = "it was shared with you"
        raise Forbidden(
            f"{label} belongs to workspace {workspace!r}, which you are not a member of; you may pull it "
            f"because {how}, but only members of {workspace!r} may download it as an archive (images "
            "shared from another workspace cannot be downloaded)"
        )

    async def record(self, actor: Subject, archive: ImageArchive, start: int, client_ip: str | None) -> None:
        """An audit entry for a download that starts streaming (``start`` > 0: a resumed one)."""
        async with self.db.write() as conn:
            await audit.record(
                conn,
                actor,
                "image.download",
                workspace_id=archive.workspace_id,
                target=f"{archive.image}:{archive.version}",
                client_ip=client_ip,
                detail={
                    "digest": archive.digest,
                    "exported": archive.root,
                    "format": archive.format,
                    "platform": archive.platform,
                    "size": archive.size,
                    "start": start,
                },
            )


def _own_roles_only(facts: Facts) -> Facts:
    """The facts without what shares an image beyond its workspace (public, granted requests)."""
    return Facts(
        workspace_exists=facts.workspace_exists,
        repository_exists=facts.repository_exists,
        workspace_roles=facts.workspace_roles,
        repository_roles=facts.repository_roles,
    )


def _not_available(label: str, found: VersionView) -> str:
    if found.status == "pending":
        return f"{label} is pending: Dockyard is still reading the pushed image; try again in a moment"
    reason = f": {found.status_reason}" if found.status_reason else ""
    return f"{label} is {found.status}{reason}; only available versions can be downloaded"
