"""Lineage, the read side: a version's base and its children as one viewer may see them.

The base recorded (:mod:`.lineage`) is shown when the viewer sees its image; otherwise an
image with the same whole chain that the viewer sees stands in for it; otherwise the answer
says only that the version is based on an image the viewer cannot see (no name, digest or
depth). Children are listed from the recorded bases (indexed on the base), filtered by the
permission rule (:mod:`.visibility`) and paged in SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

from sqlalchemy import select

from dockyard.auth.policy import Subject
from dockyard.catalog.lineage import base_updated
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import image_versions, images, layer_chains, version_lineage
from dockyard.catalog.views import VersionView
from dockyard.catalog.visibility import Viewer, image_visible, resolve
from dockyard.db.engine import Connection, Database
from dockyard.errors import NotFound


@dataclass(frozen=True)
class BasedOn:
    """The base image of a version; ``visible`` False: one the viewer cannot see (all else None)."""

    visible: bool
    image: str | None = None
    version: str | None = None
    digest: str | None = None
    layers_added: int | None = None


@dataclass(frozen=True)
class Child:
    image: str
    version: str
    digest: str | None
    layers_added: int
    base_updated: bool


@dataclass(frozen=True)
class ChildPage:
    items: list[Child]
    limit: int
    offset: int
    next_offset: int | None  # None: the last page


@dataclass(frozen=True)
class LineageView:
    image: str
    version: str
    based_on: BasedOn | None
    base_updated: bool
    children: ChildPage


@dataclass(frozen=True)
class LineagedVersion(VersionView):
    """A version as ``GET /images/{name}/versions/{version}`` shows it: with its base."""

    based_on: BasedOn | None = None
    base_updated: bool = False


def with_lineage(view: VersionView, lineage: LineageView | None) -> LineagedVersion:
    plain = {f.name: getattr(view, f.name) for f in fields(VersionView)}
    if lineage is None:
        return LineagedVersion(**plain)
    return LineagedVersion(**plain, based_on=lineage.based_on, base_updated=lineage.base_updated)


async def _version_id(conn: Connection, name: str, version: str) -> int:
    found = (
        await conn.execute(
            select(image_versions.c.id)
            .join(images, images.c.id == image_versions.c.image_id)
            .where(images.c.name == name, image_versions.c.version == version)
        )
    ).scalar()
    if found is None:
        raise NotFound(f"image {name!r} has no version {version!r}")
    return int(found)


async def _based_on(conn: Connection, viewer: Viewer, version_id: int) -> tuple[BasedOn | None, bool]:
    row = (
        await conn.execute(
            select(
                images.c.name,
                version_lineage.c.base_version,
                version_lineage.c.base_digest,
                version_lineage.c.base_chain,
                version_lineage.c.layers_added,
                image_visible(viewer).label("visible"),
                base_updated().label("updated"),
            )
            .join(images, images.c.id == version_lineage.c.base_image_id)
            .where(version_lineage.c.version_id == version_id)
        )
    ).first()
    if row is None:
        return None, False
    name, version, digest, chain, added, visible, updated = row
    if visible:
        return BasedOn(True, name, version, digest, added), bool(updated)
    same = (
        await conn.execute(
            select(images.c.name, image_versions.c.version, image_versions.c.digest)
            .select_from(layer_chains)
            .join(image_versions, image_versions.c.id == layer_chains.c.version_id)
            .join(images, images.c.id == image_versions.c.image_id)
            .where(
                layer_chains.c.chain == chain,
                layer_chains.c.top.is_(True),
                image_versions.c.status == "available",
                image_visible(viewer),
            )
            .order_by(image_versions.c.created_at, image_versions.c.id)
            .limit(1)
        )
    ).first()
    if same is not None:
        return BasedOn(True, same[0], same[1], same[2], added), False
    return BasedOn(False), False


async def _children(conn: Connection, viewer: Viewer, version_id: int, limit: int, offset: int) -> ChildPage:
    rows = (
        await conn.execute(
            select(
                images.c.name,
                image_versions.c.version,
                image_versions.c.digest,
                version_lineage.c.layers_added,
                base_updated().label("updated"),
            )
            .select_from(version_lineage)
            .join(image_versions, image_versions.c.id == version_lineage.c.version_id)
            .join(images, images.c.id == image_versions.c.image_id)
            .where(version_lineage.c.base_version_id == version_id, image_visible(viewer))
            .order_by(version_lineage.c.version_id)
            .limit(limit + 1)
            .offset(offset)
        )
    ).all()
    items = [Child(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows[:limit]]
    return ChildPage(items, limit, offset, offset + limit if len(rows) > limit else None)


class LineageReader:
    """A version's base and children for a viewer (who must see the version)."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog

    async def of(self, actor: Subject, name: str, version: str, limit: int = 20) -> LineageView:
        await self.catalog.version(actor, name, version)  # NotFound unless the actor sees it
        async with self.db.read() as conn:
            viewer = await resolve(conn, actor, time.time())
            version_id = await _version_id(conn, name, version)
            based_on, updated = await _based_on(conn, viewer, version_id)
            children = await _children(conn, viewer, version_id, limit, 0)
        return LineageView(name, version, based_on, updated, children)

    async def children(self, actor: Subject, name: str, version: str, limit: int, offset: int) -> ChildPage:
        await self.catalog.version(actor, name, version)
        async with self.db.read() as conn:
            viewer = await resolve(conn, actor, time.time())
            return await _children(conn, viewer, await _version_id(conn, name, version), limit, offset)

    async def version(self, actor: Subject, name: str, version: str) -> LineagedVersion:
        """The version view with ``based_on`` and ``base_updated``."""
        return await self.shown(actor, await self.catalog.version(actor, name, version))

    async def shown(self, actor: Subject, view: VersionView) -> LineagedVersion:
        """``view``, a version the catalog has just shown ``actor``, with its base."""
        async with self.db.read() as conn:
            viewer = await resolve(conn, actor, time.time())
            version_id = await _version_id(conn, view.image, view.version)
            based_on, updated = await _based_on(conn, viewer, version_id)
        return with_lineage(
            view, LineageView(view.image, view.version, based_on, updated, ChildPage([], 0, 0, None))
        )
