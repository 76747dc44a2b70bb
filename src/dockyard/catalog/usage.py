"""Storage used by internal versions, images and workspaces, each blob counted once per
scope (layers shared by two versions of an image count once for the image)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from dockyard.auth.guard import find_workspace
from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.catalog.access import Access
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import INTERNAL
from dockyard.db.engine import Connection
from dockyard.errors import NotFound
from dockyard.registry.tables import blobs, manifest_references, manifests


@dataclass(frozen=True)
class VersionUsage:
    version: str
    bytes: int


@dataclass(frozen=True)
class ImageUsage:
    image: str
    bytes: int  # distinct blobs of all its internal versions
    versions: list[VersionUsage]


@dataclass(frozen=True)
class WorkspaceUsage:
    workspace: str
    bytes: int  # distinct blobs of all its images
    images: list[ImageUsage]


async def closure(conn: Connection, repository: str, digest: str) -> dict[str, int]:
    """Blob digest -> size for a manifest and, for an index, its children."""
    found: dict[str, int] = {}
    pending, seen = [digest], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        rows = (
            await conn.execute(
                select(manifest_references.c.kind, manifest_references.c.digest, blobs.c.size)
                .select_from(
                    manifest_references.join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                    .join(repositories, repositories.c.id == manifests.c.repository_id)
                    .outerjoin(blobs, blobs.c.digest == manifest_references.c.digest)
                )
                .where(repositories.c.name == repository, manifests.c.digest == current)
            )
        ).all()
        for kind, ref, size in rows:
            if kind == "manifest":
                pending.append(ref)
            elif size is not None:
                found[ref] = int(size)
    return found


class Usage:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def image(self, actor: Subject, name: str) -> tuple[ImageUsage, dict[str, int]]:
        view = await self.catalog.get(actor, name)
        versions, union = [], {}
        async with self.catalog.db.read() as conn:
            for v in view.versions:
                if v.source != INTERNAL or not v.digest:
                    continue
                blobs_of = await closure(conn, name, v.digest)
                union.update(blobs_of)
                versions.append(VersionUsage(v.version, sum(blobs_of.values())))
        return ImageUsage(name, sum(union.values()), versions), union

    async def workspace(self, actor: Subject, workspace: str) -> WorkspaceUsage:
        async with self.catalog.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            if not actor.is_admin and await Access(conn, actor).role(ws.id) is None:
                raise NotFound(f"workspace {workspace!r}: usage is shown to its members")
            names = [
                row[0]
                for row in await conn.execute(
                    select(images.c.name)
                    .where(images.c.workspace_id == ws.id)
                    .where(
                        images.c.id.in_(
                            select(image_versions.c.image_id).where(image_versions.c.source == INTERNAL)
                        )
                    )
                    .order_by(images.c.name)
                )
            ]
        result, union = [], {}
        for name in names:
            try:
                usage, blobs_of = await self.image(actor, name)
            except NotFound:
                continue
            result.append(usage)
            union.update(blobs_of)
        return WorkspaceUsage(workspace, sum(union.values()), result)
