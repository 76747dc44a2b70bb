"""Lineage, the write side: each inspected version's layer chains and its base.

At inspection (:mod:`.inspections`) a version's chains are recorded per platform
(:func:`record_chains`) and its base found (:func:`relineage`): the version whose whole chain
is the deepest of this version's proper prefix chains, in its main platform
(:func:`.chains.main_platform`), the FROM of a build made here first when it resolves to
such a version (:data:`.tables.built_from`). What the base was is kept
(:data:`.tables.version_lineage`), so that a base tag moved or a newer version of the base
image later is "base updated" (:func:`base_updated`, an SQL condition) and the children it
had stay listed. A version inspected later adopts the versions it is a deeper base of
(:func:`adopt`), and tells :attr:`Lineage.hooks` which children its push updated the base of
(auto-rebuilds: :mod:`dockyard.builds.rebuilds`). Reading, for a viewer, is
:mod:`.lineage_views`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, select, update
from sqlalchemy.orm import aliased

from dockyard.catalog.chains import MAX_LAYERS, MAX_PLATFORMS, chain_ids, main_platform
from dockyard.catalog.tables import built_from, image_versions, images, layer_chains, version_lineage
from dockyard.db.engine import Connection, Database
from dockyard.oci.reference import ReferenceError, parse_reference

log = logging.getLogger("dockyard.catalog")

ADOPT_BATCH = 500  # versions a new base adopts (or flags) at once; the backfill does the rest
CANDIDATES = 20

# (child version ids whose base the push of a newer base updated)
BaseUpdated = Callable[[list[int]], Awaitable[None]]


@dataclass(frozen=True)
class Found:
    version_id: int
    image_id: int
    version: str
    digest: str | None
    chain: str
    depth: int
    pushed_at: float


async def record_chains(conn: Connection, version_id: int, layer_ids: dict[str, list[str]]) -> None:
    """Replace the version's chains with those of ``layer_ids`` (platform -> ordered ids)."""
    await conn.execute(delete(layer_chains).where(layer_chains.c.version_id == version_id))
    rows = []
    for platform, ids in sorted(layer_ids.items())[:MAX_PLATFORMS]:
        if not ids or len(ids) > MAX_LAYERS:
            continue
        chains = chain_ids(ids)
        rows += [
            {"version_id": version_id, "platform": platform[:64], "depth": depth, "chain": chain,
             "top": depth == len(chains)}
            for depth, chain in enumerate(chains, start=1)
        ]  # fmt: skip
    if rows:
        await conn.execute(insert(layer_chains), rows)


async def _prefixes(conn: Connection, version_id: int) -> tuple[str, dict[str, int], int]:
    """(main platform, {proper prefix chain: depth} in it, its layer count)."""
    rows = (
        await conn.execute(
            select(layer_chains.c.platform, layer_chains.c.depth, layer_chains.c.chain).where(
                layer_chains.c.version_id == version_id
            )
        )
    ).all()
    platform = main_platform(sorted({r[0] for r in rows})) or ""
    mine = {r[2]: r[1] for r in rows if r[0] == platform}
    top = max(mine.values(), default=0)
    return platform, {chain: depth for chain, depth in mine.items() if depth < top}, top


def _candidates(version_id: int, chains: list[str], platform: str) -> Any:
    """Versions whose whole chain is one of ``chains``: deepest first, then the same
    platform, then the earliest pushed (the original rather than its copies)."""
    return (
        select(
            image_versions.c.id, image_versions.c.image_id, image_versions.c.version,
            image_versions.c.digest, layer_chains.c.chain, layer_chains.c.depth, image_versions.c.updated_at,
        )
        .join(image_versions, image_versions.c.id == layer_chains.c.version_id)
        .where(
            layer_chains.c.chain.in_(chains),
            layer_chains.c.top.is_(True),
            layer_chains.c.version_id != version_id,
            image_versions.c.status != "failed",  # chains are recorded as a version is found available
        )
        .order_by(
            layer_chains.c.depth.desc(), (layer_chains.c.platform == platform).desc(),
            image_versions.c.created_at, image_versions.c.id,
        )
    )  # fmt: skip


async def _built_from(conn: Connection, version_id: int, chains: dict[str, int]) -> Found | None:
    """The version named by the FROM of the build that made this one, if it is a base of it."""
    ref = (
        await conn.execute(
            select(built_from.c.reference)
            .join(image_versions, image_versions.c.digest == built_from.c.digest)
            .where(image_versions.c.id == version_id)
        )
    ).scalar()
    if ref is None:
        return None
    try:
        parsed = parse_reference(ref)
    except ReferenceError:
        return None
    named = [images.c.name == parsed.repository]
    named.append(
        image_versions.c.digest == str(parsed.digest)
        if parsed.digest is not None
        else image_versions.c.version == (parsed.tag or "latest")
    )
    stmt = (
        _candidates(version_id, list(chains), "")
        .join(images, images.c.id == image_versions.c.image_id)
        .where(*named)
    )
    row = (await conn.execute(stmt.limit(1))).first()
    return Found(*row) if row is not None else None


async def find_base(conn: Connection, version_id: int) -> tuple[str, Found | None, int]:
    """(main platform, the base, the version's layer count)."""
    platform, chains, top = await _prefixes(conn, version_id)
    if not chains:
        return platform, None, top
    found = await _built_from(conn, version_id, chains)
    if found is None:
        row = (await conn.execute(_candidates(version_id, list(chains), platform).limit(1))).first()
        found = Found(*row) if row is not None else None
    return platform, found, top


async def relineage(conn: Connection, version_id: int, *, keep_deeper: bool = True) -> None:
    """Find and record the version's base. A base recorded before is kept while it is still a
    prefix of the version and no deeper one is found (its tag may have moved since: the
    children of an updated base stay its children)."""
    platform, found, top = await find_base(conn, version_id)
    old = (
        await conn.execute(select(version_lineage).where(version_lineage.c.version_id == version_id))
    ).first()
    if old is not None and keep_deeper and old.base_chain is not None:
        _, chains, _ = await _prefixes(conn, version_id)
        still = chains.get(old.base_chain)
        if still is not None and (found is None or found.depth <= still):
            return
    values: dict[str, Any] = {
        "platform": platform,
        "base_version_id": found.version_id if found else None,
        "base_image_id": found.image_id if found else None,
        "base_version": found.version if found else None,
        "base_digest": found.digest if found else None,
        "base_chain": found.chain if found else None,
        "base_pushed_at": found.pushed_at if found else None,
        "depth": found.depth if found else 0,
        "layers_added": top - found.depth if found else top,
        "computed_at": time.time(),
    }
    if old is None:
        await conn.execute(insert(version_lineage).values(version_id=version_id, **values))
    else:
        await conn.execute(
            update(version_lineage).where(version_lineage.c.version_id == version_id).values(**values)
        )


async def adopt(conn: Connection, version_id: int) -> None:
    """Versions that have this version's whole chain as a proper prefix find their base again
    (it may be deeper than the one they had)."""
    tops = select(layer_chains.c.chain).where(
        layer_chains.c.version_id == version_id, layer_chains.c.top.is_(True)
    )
    rows = await conn.execute(
        select(layer_chains.c.version_id)
        .where(
            layer_chains.c.chain.in_(tops),
            layer_chains.c.top.is_(False),
            layer_chains.c.version_id != version_id,
        )
        .distinct()
        .limit(ADOPT_BATCH)
    )
    for (child,) in rows.all():
        await relineage(conn, child)


def base_updated(row: Any = version_lineage) -> ColumnElement[bool]:
    """A condition on ``version_lineage``: the base image has, since the base was recorded, a
    version pushed whose digest differs and which is not itself built on the base (its tag
    moved, or a newer version appeared)."""
    newer = aliased(image_versions)
    return exists(
        select(newer.c.id).where(
            newer.c.image_id == row.c.base_image_id,
            newer.c.id != row.c.version_id,
            newer.c.digest != row.c.base_digest,
            newer.c.updated_at > row.c.base_pushed_at,
            newer.c.status == "available",
            ~exists(
                select(layer_chains.c.version_id)
                .where(layer_chains.c.version_id == newer.c.id, layer_chains.c.chain == row.c.base_chain)
                .correlate_except(layer_chains)
            ),
        )
    )


async def outdated_children(conn: Connection, version_id: int) -> list[int]:
    """The versions whose recorded base image is this version's and whose base this version
    updates (what a push of it makes "base updated")."""
    me = (
        await conn.execute(
            select(image_versions.c.image_id, image_versions.c.digest).where(
                image_versions.c.id == version_id
            )
        )
    ).first()
    if me is None:
        return []
    mine = select(layer_chains.c.chain).where(layer_chains.c.version_id == version_id)
    rows = await conn.execute(
        select(version_lineage.c.version_id)
        .where(
            version_lineage.c.base_image_id == me[0],
            version_lineage.c.version_id != version_id,
            version_lineage.c.base_digest != me[1],
            version_lineage.c.base_chain.not_in(mine),
        )
        .order_by(version_lineage.c.version_id)
        .limit(ADOPT_BATCH)
    )
    return [r[0] for r in rows]


class Lineage:
    """Records lineage at inspection and tells the hooks about children whose base a push
    updated."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.hooks: list[BaseUpdated] = []

    def on_base_updated(self, hook: BaseUpdated) -> None:
        self.hooks.append(hook)

    async def inspected(self, image_id: int, tag: str, digest: str, layer_ids: dict[str, list[str]]) -> None:
        """After a version was inspected as ``available``: its chains, its base, the versions
        it is a deeper base of, and the hooks for the children whose base it updates. A
        failure is logged: the inspection stands without lineage (the backfill retries)."""
        try:
            updated = await self._record(image_id, tag, digest, layer_ids)
        except Exception:
            log.exception("could not record the lineage of image %d version %s", image_id, tag)
            return
        if updated:
            for hook in self.hooks:
                try:
                    await hook(updated)
                except Exception:
                    log.exception("a base-updated hook failed for %d children", len(updated))

    async def _record(
        self, image_id: int, tag: str, digest: str, layer_ids: dict[str, list[str]]
    ) -> list[int]:
        async with self.db.write() as conn:
            # The version's row is locked as note_built_from locks it: whichever of the two
            # comes second sees the other's rows (a build's FROM recorded while this version is
            # inspected is never missed on PostgreSQL; SQLite serialises writes anyway).
            version_id = (
                await conn.execute(
                    select(image_versions.c.id)
                    .where(
                        image_versions.c.image_id == image_id,
                        image_versions.c.version == tag,
                        image_versions.c.digest == digest,
                    )
                    .with_for_update(key_share=True)
                )
            ).scalar()
            if version_id is None:
                return []
            await record_chains(conn, version_id, layer_ids)
            await relineage(conn, version_id, keep_deeper=False)
            await adopt(conn, version_id)
            return await outdated_children(conn, version_id)

    async def note_built_from(
        self, conn: Connection, image_id: int, tag: str, digest: str, reference: str
    ) -> None:
        """What a build run here was built FROM (in the run's transaction); the version it
        pushed finds its base again if it was inspected already."""
        await conn.execute(  # serialised with the version's inspection (see _record)
            select(image_versions.c.id)
            .where(
                image_versions.c.image_id == image_id,
                image_versions.c.version == tag,
                image_versions.c.digest == digest,
            )
            .with_for_update(key_share=True)
        )
        existing = (
            await conn.execute(select(built_from.c.digest).where(built_from.c.digest == digest))
        ).first()
        values = {"reference": reference[:600], "at": time.time()}
        if existing is None:
            await conn.execute(insert(built_from).values(digest=digest, **values))
        else:
            await conn.execute(update(built_from).where(built_from.c.digest == digest).values(**values))
        inspected = exists(
            select(layer_chains.c.depth).where(layer_chains.c.version_id == image_versions.c.id)
        )
        version_id = (
            await conn.execute(
                select(image_versions.c.id).where(
                    image_versions.c.image_id == image_id,
                    image_versions.c.version == tag,
                    image_versions.c.digest == digest,
                    inspected,
                )
            )
        ).scalar()
        if version_id is not None:
            await relineage(conn, version_id, keep_deeper=False)
