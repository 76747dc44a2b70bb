"""Tools: the catalog's images seen through their versions of type ``tool``, filtered and
paged in the database, for the GA4GH Tool Registry Service (``/ga4gh/trs/v2``).

An image is a tool for a subject when the subject sees it (:func:`.visibility.image_visible`,
in the same query as the filters) and it has at least one version of type ``tool``, and it
lists only those versions: a private image is never listed, and reads as not found, for
whoever may not see it. A version's Dockerfile is the one of its ``built`` history event
(recorded when Dockyard built and pushed it) whose digest is the version's: whoever sees the
version may read its history, hence its Dockerfile (``GET /api/v1/images/{name}/events``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, text

from dockyard.auth.policy import Subject
from dockyard.auth.tables import workspaces
from dockyard.catalog.queries import images_by_name
from dockyard.catalog.tables import image_events, image_versions, images
from dockyard.catalog.views import VersionView, version_view
from dockyard.catalog.visibility import image_visible, resolve
from dockyard.db.engine import Connection, Database
from dockyard.errors import NotFound

TOOL = "tool"


@dataclass(frozen=True)
class ToolFilters:
    """What the tool list is narrowed to; ``None`` is no filter. Texts match anywhere,
    case folded; ``tool_id`` and ``organization`` match exactly."""

    tool_id: str | None = None  # the image name
    name: str | None = None  # text in the image name
    toolname: str | None = None  # text in the name after the workspace
    organization: str | None = None  # the workspace
    description: str | None = None
    checker: bool | None = None  # Dockyard's tools are never checker workflows


@dataclass(frozen=True)
class Tool:
    name: str
    workspace: str
    description: str
    updated_at: float
    versions: list[VersionView]
    dockerfiles: dict[str, str]  # version -> the Dockerfile it was built from (built here)


@dataclass(frozen=True)
class ToolPage:
    items: list[Tool]
    total: int
    limit: int
    offset: int


def _contains(column: Any, value: str, prefix: str = "%") -> ColumnElement[bool]:
    """``value`` anywhere in ``column`` (after ``prefix``), case folded; ``%`` and ``_`` are
    themselves."""
    escaped = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    condition: ColumnElement[bool] = column.ilike(f"{prefix}{escaped}%", escape="!")
    return condition


def _conditions(filters: ToolFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.checker:
        where.append(false())
    if filters.tool_id is not None:
        where.append(images.c.name == filters.tool_id)
    if filters.name:
        where.append(_contains(images.c.name, filters.name))
    if filters.toolname:
        # Workspace names hold no '/': text after the first one is in the tool's own name.
        where.append(_contains(images.c.name, filters.toolname, prefix="%/%"))
    if filters.organization is not None:
        ws = select(workspaces.c.id).where(workspaces.c.name == filters.organization).scalar_subquery()
        where.append(images.c.workspace_id == ws)
    if filters.description:
        where.append(_contains(images.c.description, filters.description))
    return where


async def list_tools(
    conn: Connection,
    subject: Subject,
    filters: ToolFilters,
    *,
    limit: int,
    offset: int,
    now: float,
    is_sqlite: bool,
) -> ToolPage:
    """The tools ``subject`` sees that match ``filters``, by name: a count and one page."""
    if not is_sqlite:
        await conn.execute(text("SET LOCAL jit = off"))  # see queries._walk_indexes
    visible = image_visible(await resolve(conn, subject, now))
    tool_version = [image_versions.c.image_id == images.c.id, image_versions.c.kind == TOOL]
    # OFFSET 0 keeps PostgreSQL from turning the EXISTS into a semi-join, which hashes every
    # visible version of the catalog first (measured: 280 ms for one workspace's 200 images of
    # 20,000); as a subplan it probes the (image_id, version) index once per candidate image.
    shown = select(image_versions.c.id).where(*tool_version).offset(0).exists()
    where = [visible, shown, *_conditions(filters)]
    counted = select(images.c.id).where(*where).subquery()
    total: int = (await conn.execute(select(func.count()).select_from(counted))).scalar_one()
    if total <= offset:
        return ToolPage([], total, limit, offset)
    rows = await images_by_name(conn, where, limit, offset)
    ids = [row._mapping["id"] for row in rows]
    versions: dict[int, list[VersionView]] = {image_id: [] for image_id in ids}
    for version in await conn.execute(
        select(image_versions, images.c.name.label("image_name"))
        .join(images, images.c.id == image_versions.c.image_id)
        .where(image_versions.c.image_id.in_(ids), image_versions.c.kind == TOOL)
        .order_by(image_versions.c.image_id, image_versions.c.id)
    ):
        versions[version._mapping["image_id"]].append(version_view(version._mapping["image_name"], version))
    dockerfiles = await _dockerfiles(conn, versions)
    items = [
        Tool(
            name=m["name"],
            workspace=m["workspace_name"],
            description=m["description"],
            updated_at=m["updated_at"],
            versions=versions[m["id"]],
            dockerfiles=dockerfiles.get(m["id"], {}),
        )
        for m in (row._mapping for row in rows)
    ]
    return ToolPage(items, total, limit, offset)


async def _dockerfiles(conn: Connection, versions: dict[int, list[VersionView]]) -> dict[int, dict[str, str]]:
    """Per image, per version: the Dockerfile of the latest build that pushed its digest."""
    digests = {
        (image_id, v.version): v.digest for image_id, found in versions.items() for v in found if v.digest
    }
    if not digests:
        return {}
    found: dict[int, dict[str, str]] = {}
    for row in await conn.execute(
        select(image_events.c.image_id, image_events.c.version, image_events.c.detail)
        .where(
            image_events.c.image_id.in_({image_id for image_id, _ in digests}), image_events.c.kind == "built"
        )
        .order_by(image_events.c.id)
    ):
        image_id, version, detail = row
        built = json.loads(detail)
        dockerfile = built.get("dockerfile")
        if digests.get((image_id, version)) == built.get("digest") and isinstance(dockerfile, str):
            found.setdefault(image_id, {})[version] = dockerfile  # later builds replace earlier ones
    return found


class Tools:
    """The tool list and one tool, as a subject sees them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(self, actor: Subject, filters: ToolFilters, *, limit: int, offset: int) -> ToolPage:
        async with self.db.read() as conn:
            return await list_tools(
                conn, actor, filters, limit=limit, offset=offset, now=time.time(), is_sqlite=self.db.is_sqlite
            )

    async def get(self, actor: Subject, tool_id: str) -> Tool:
        """The tool named ``tool_id``; ``NotFound`` also when the actor may not see it."""
        if "\x00" in tool_id or len(tool_id) > 255:  # no image is named so (and PostgreSQL refuses NUL)
            raise NotFound(f"tool {tool_id[:100]!r} not found")
        page = await self.search(actor, ToolFilters(tool_id=tool_id), limit=1, offset=0)
        if not page.items:
            raise NotFound(f"tool {tool_id!r} not found")
        return page.items[0]

    async def version(self, actor: Subject, tool_id: str, version_id: str) -> tuple[Tool, VersionView]:
        tool = await self.get(actor, tool_id)
        for version in tool.versions:
            if version.version == version_id:
                return tool, version
        raise NotFound(f"tool {tool_id!r} has no version {version_id!r}")
