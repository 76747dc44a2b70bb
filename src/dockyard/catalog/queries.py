"""The catalog's lists, filtered, sorted and paged in the database: the image list
(``GET /api/v1/images``) and the flat version list (``GET /api/v1/versions``).

Who sees what is the condition of :mod:`.visibility`, in the same query as the filters, so a
page costs a count and a page of rows, not a query per image. Every filter is exact:

- ``platform``: ``linux/arm64`` matches ``linux/arm64/v8`` (any variant), ``linux/arm64/v8``
  only itself (:func:`platform_matches`), on the ``platforms`` JSON list as ``json.dumps``
  writes it: a substring search on the JSON text, and where that could be fooled (escapes in
  the text) a check of the elements themselves (:func:`platform_condition`).
- ``q`` on the version list: the text anywhere in the image's name or description, case
  folded by the database (``%`` and ``_`` are themselves). The image list keeps its
  historical ``LIKE`` on the lowered text, where ``%`` and ``_`` are wildcards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Row,
    Select,
    Text,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.selectable import Join

from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories, workspaces
from dockyard.catalog.accessories import attach
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import PRIVATE, ImageView, VersionView, image_view, source_of, version_view
from dockyard.catalog.visibility import Viewer, image_visible, resolve
from dockyard.db.engine import Connection

# A list's ``total`` is exact up to this many rows; beyond it the answer says "1,000 or
# more" (``total_exact`` false), as Harbor and Quay do, so no page counts every visible row.
COUNT_CAP = 1_000
SORTS = ("name", "version", "source", "type", "status", "size", "modified")
ORDERS = ("asc", "desc")


def platform_matches(wanted: str, platforms: list[str]) -> bool:
    """``linux/arm64`` matches ``linux/arm64/v8`` (any variant); ``linux/arm64/v8`` only itself."""
    return any(p == wanted or p.startswith(wanted + "/") for p in platforms)


@dataclass(frozen=True)
class Page:
    items: list[ImageView]
    total: int  # exact when ``total_exact``, else :data:`COUNT_CAP`: there are more
    limit: int
    offset: int
    total_exact: bool = True


@dataclass(frozen=True, kw_only=True)
class ListedVersion(VersionView):
    """A row of the version list: the version, its image's workspace and description."""

    workspace: str
    description: str
    visibility: str  # the image's (its repository's): public or private


@dataclass(frozen=True)
class VersionPage:
    items: list[ListedVersion]
    total: int  # exact when ``total_exact``, else :data:`COUNT_CAP`: there are more
    limit: int
    offset: int
    total_exact: bool = True


# A condition on ``images`` for the viewer, from a feature above the catalog (trust marks).
Condition = Callable[[Viewer], ColumnElement[bool]]


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to; ``None`` is no filter."""

    workspace: str | None = None
    source: str | None = None
    kind: str | None = None
    status: str | None = None
    platform: str | None = None
    query: str | None = None
    condition: Condition | None = None

    @property
    def on_versions(self) -> bool:
        """An image is listed only with a matching version (an empty value filters nothing here,
        as the image list always did, though it still narrows the versions shown)."""
        return bool(self.source or self.kind or self.status or self.platform)


def platform_condition(wanted: str, is_sqlite: bool) -> ColumnElement[bool]:
    """A condition on ``image_versions``: :func:`platform_matches` on its ``platforms``.

    Wherever an element matches, the JSON text holds ``"E"`` or ``"E/`` (E: ``wanted`` as
    ``json.dumps`` escapes it), so a case-sensitive substring search finds every match. It
    can only find more where a ``"`` of the text is not an element's opening quote: an escaped
    one (the text then holds a backslash), or a closing one followed by the list's ``, "``
    (E is then ``, ``). Those lists are decided by their decoded elements, the others (every
    list of plain platforms) by the substring search alone.
    """
    escaped = json.dumps(wanted)[1:-1]  # as json.dumps writes it inside a list
    column = image_versions.c.platforms
    find = func.instr if is_sqlite else func.strpos
    found = or_(find(column, f'"{escaped}"') > 0, find(column, f'"{escaped}/') > 0)
    if is_sqlite:
        elements = func.json_each(column).table_valued("value")
        value = elements.c.value
        element = (
            select(literal(1))
            .select_from(elements)
            .where(or_(value == wanted, func.substr(value, 1, len(wanted) + 1) == wanted + "/"))
        )
    else:
        # The elements' JSON text, compared with the escaped value: decoding them could fail
        # (PostgreSQL has no text for \u0000), comparing never does.
        raw = cast(func.json_array_elements(cast(column, JSON)).column_valued("element"), Text)
        prefix = f'"{escaped}/'
        element = select(literal(1)).where(
            or_(raw == f'"{escaped}"', func.substr(raw, 1, len(prefix)) == prefix)
        )
    if escaped == ", ":
        return and_(found, element.exists())
    return and_(found, or_(find(column, "\\") == 0, element.exists()))


def _version_filters(filters: Filters, is_sqlite: bool) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.source is not None:
        found.append(image_versions.c.source == filters.source)
    if filters.kind is not None:
        found.append(image_versions.c.kind == filters.kind)
    if filters.status is not None:
        found.append(image_versions.c.status == filters.status)
    if filters.platform is not None:
        found.append(platform_condition(filters.platform, is_sqlite))
    return found


def _in_workspace(name: str) -> ColumnElement[bool]:
    return images.c.workspace_id == select(workspaces.c.id).where(workspaces.c.name == name).scalar_subquery()


def _all(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return and_(*conditions) if conditions else true()


class Walk(Join):
    """An inner join that SQLite reads in the order written (``CROSS JOIN``, the way SQLite
    lets a query fix its loops): the table whose index gives the sort order outside, so a page
    walks that index and stops at ``limit``. Without statistics SQLite otherwise takes every
    filter as selective, reads every match and sorts them all. Other databases plan it as a
    plain join."""

    inherit_cache = True


@compiles(Walk, "sqlite")
def _cross_join(join: Walk, compiler: SQLCompiler, **kw: Any) -> str:
    kw["asfrom"] = True
    left = compiler.process(join.left, **kw)
    right = compiler.process(join.right, **kw)
    assert join.onclause is not None  # every Walk is built with its ON clause
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


async def _walk_indexes(conn: Connection, is_sqlite: bool) -> None:
    """How PostgreSQL plans this transaction's list queries.

    It compiles a query it estimates as costly to machine code first: measured, the compiling
    took longer (~1 s) than the query, so not here. And it prices a walk of the sort order's
    index with a lookup per row above hashing both tables and sorting every visible row, so a
    deep page (offset 50,000 of 100,000 images) hashed and sorted 400,000 rows for 50 (2.5 s
    against 0.3 s, measured): here it walks the indexes (nested loops, incremental sorts)."""
    if not is_sqlite:
        for setting in ("jit", "enable_hashjoin", "enable_mergejoin", "enable_sort"):
            await conn.execute(text(f"SET LOCAL {setting} = off"))


async def _count(conn: Connection, stmt: Select[Any]) -> tuple[int, bool]:
    """How many rows ``stmt`` gives, counted up to :data:`COUNT_CAP` (then ``(COUNT_CAP,
    False)``): the database stops at the cap instead of visiting every matching row."""
    capped = stmt.limit(COUNT_CAP + 1).subquery()
    found: int = (await conn.execute(select(func.count()).select_from(capped))).scalar_one()
    return (found, True) if found <= COUNT_CAP else (COUNT_CAP, False)


async def images_by_name(
    conn: Connection, where: list[ColumnElement[bool]], limit: int, offset: int
) -> Sequence[Row[Any]]:
    """One page of the image rows (with ``workspace_name``) that match ``where``, by name."""
    return (
        await conn.execute(
            select(images, workspaces.c.name.label("workspace_name"), repositories.c.visibility)
            .join(workspaces, workspaces.c.id == images.c.workspace_id)
            .outerjoin(repositories, repositories.c.name == images.c.name)
            .where(*where)
            .order_by(images.c.name)
            .limit(limit)
            .offset(offset)
        )
    ).all()


async def search_images(
    conn: Connection,
    subject: Subject,
    filters: Filters,
    limit: int,
    offset: int,
    *,
    now: float,
    is_sqlite: bool,
) -> Page:
    """Images the subject may see, by name, with only their versions that match the filters:
    with version filters an image is listed when it has such a version, without them every
    image the subject sees (with or without versions)."""
    await _walk_indexes(conn, is_sqlite)
    viewer = await resolve(conn, subject, now)
    matching = _all(_version_filters(filters, is_sqlite))
    owned = image_versions.c.image_id == images.c.id
    where: list[ColumnElement[bool]] = [image_visible(viewer)]
    if filters.on_versions:
        where.append(select(image_versions.c.id).where(owned, matching).exists())
    if filters.workspace:
        where.append(_in_workspace(filters.workspace))
    if filters.condition is not None:
        where.append(filters.condition(viewer))
    if filters.query:
        pattern = f"%{filters.query.lower()}%"
        where.append(func.lower(images.c.name).like(pattern) | func.lower(images.c.description).like(pattern))
    total, exact = await _count(conn, select(images.c.id).where(*where).order_by(images.c.name))
    rows = await images_by_name(conn, where, limit, offset)
    seen: dict[int, list[tuple[VersionView, bool]]] = {row._mapping["id"]: [] for row in rows}
    if seen:
        versions = (
            await conn.execute(
                select(image_versions, images.c.name.label("image_name"), matching.label("matches"))
                .join(images, images.c.id == image_versions.c.image_id)
                .where(image_versions.c.image_id.in_(list(seen)))
                .order_by(image_versions.c.image_id, image_versions.c.id)
            )
        ).all()
        views = await attach(conn, [version_view(v._mapping["image_name"], v) for v in versions])
        for version, view in zip(versions, views, strict=True):
            seen[version._mapping["image_id"]].append((view, bool(version._mapping["matches"])))
    items = []
    for row in rows:
        m = row._mapping
        listed = [view for view, matches in seen[m["id"]] if matches]
        described = listed or [view for view, _ in seen[m["id"]]]  # the source of what is shown
        items.append(image_view(m, listed, source_of(described), viewer.maintains(m["workspace_id"])))
    return Page(items, total, limit, offset, exact)


def _order(sort: str, order: str) -> list[UnaryExpression[Any]]:
    """The sort key, then the image name and the version (unique together), all in ``order``:
    descending is the exact reverse of ascending. An unknown size counts as larger than any
    known one (after them ascending, before them descending), where both databases' indexes
    keep it."""
    keys: dict[str, Any] = {
        "name": images.c.name,
        "version": image_versions.c.version,
        "source": image_versions.c.source,
        "type": image_versions.c.kind,
        "status": image_versions.c.status,
        "size": image_versions.c.compressed_size,
        "modified": image_versions.c.updated_at,
    }
    columns = [keys[sort], *(c for c in (images.c.name, image_versions.c.version) if c is not keys[sort])]
    ordered = [c.asc() if order == "asc" else c.desc() for c in columns]
    if sort == "size":  # the databases disagree on where NULL goes unless told
        ordered[0] = ordered[0].nulls_last() if order == "asc" else ordered[0].nulls_first()
    return ordered


async def list_versions(
    conn: Connection,
    subject: Subject,
    filters: Filters,
    *,
    sort: str,
    order: str,
    limit: int,
    offset: int,
    now: float,
    is_sqlite: bool,
) -> VersionPage:
    """Every version the subject sees that matches the filters, one row each."""
    await _walk_indexes(conn, is_sqlite)
    viewer = await resolve(conn, subject, now)
    where = [image_visible(viewer), *_version_filters(filters, is_sqlite)]
    if filters.workspace is not None:
        where.append(_in_workspace(filters.workspace))
    if filters.condition is not None:  # here on each version row (with its image)
        where.append(filters.condition(viewer))
    if filters.query:
        pattern = "%" + filters.query.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
        described = or_(
            images.c.name.ilike(pattern, escape="/"), images.c.description.ilike(pattern, escape="/")
        )
        where.append(described)  # on the images, outside: once per image
    on = images.c.id == image_versions.c.image_id
    joined = image_versions.join(images, on)
    by_image = Walk(images, image_versions, on)
    # An admin's count without image filters needs no join: one scan of an index.
    on_images = not subject.is_admin or filters.workspace is not None or filters.query or filters.condition
    counted = by_image if on_images else image_versions
    counting = select(image_versions.c.id).select_from(counted).where(*where)
    if on_images:  # in the name index's order: from the first image, stopping at the cap
        counting = counting.order_by(images.c.name)
    total, exact = await _count(conn, counting)
    if exact and total <= offset:
        return VersionPage([], total, limit, offset)
    # The page's ids first, sorted on narrow rows; then those rows whole.
    walked = by_image if sort == "name" else Walk(image_versions, images, on)
    page = select(image_versions.c.id).select_from(walked).where(*where).order_by(*_order(sort, order))
    ids = [row[0] for row in await conn.execute(page.limit(limit).offset(offset))]
    found = {
        row._mapping["id"]: row
        for row in await conn.execute(
            select(
                image_versions,
                images.c.name.label("image_name"),
                images.c.description.label("image_description"),
                workspaces.c.name.label("workspace_name"),
                repositories.c.visibility,
            )
            .select_from(
                joined.join(workspaces, workspaces.c.id == images.c.workspace_id).outerjoin(
                    repositories, repositories.c.name == images.c.name
                )
            )
            .where(image_versions.c.id.in_(ids))
        )
    }
    rows = [found[version_id] for version_id in ids]
    views = await attach(conn, [version_view(row._mapping["image_name"], row) for row in rows])
    items = [
        ListedVersion(
            **view.__dict__,
            workspace=m["workspace_name"],
            description=m["image_description"],
            visibility=m["visibility"] or PRIVATE,
        )
        for view, m in zip(views, (row._mapping for row in rows), strict=True)
    ]
    return VersionPage(items, total, limit, offset, exact)
