"""What a version's bytes are (its blobs, every platform of an index) and who else needs a blob."""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from dockyard.auth.tables import repositories
from dockyard.catalog.tables import image_versions, images
from dockyard.db.engine import Connection
from dockyard.regions.tables import version_regions
from dockyard.registry.tables import blobs, manifest_references, manifests, region_blobs

LIVE = ("copying", "available")


async def version_blobs(conn: Connection, image: str, digest: str) -> list[tuple[str, int]]:
    """(digest, size) of every blob the version's manifest needs, its index's manifests' too;
    manifests themselves live in the database, which every region shares."""
    top = (
        await conn.execute(
            select(manifests.c.id, manifests.c.repository_id)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == image, manifests.c.digest == digest)
        )
    ).first()
    if top is None:
        return []
    children = select(manifest_references.c.digest).where(
        manifest_references.c.manifest_id == top[0], manifest_references.c.kind == "manifest"
    )
    found = await conn.execute(
        select(manifests.c.id).where(manifests.c.repository_id == top[1], manifests.c.digest.in_(children))
    )
    ids = [top[0], *found.scalars()]
    rows = await conn.execute(
        select(manifest_references.c.digest, blobs.c.size)
        .join(blobs, blobs.c.digest == manifest_references.c.digest)
        .where(manifest_references.c.manifest_id.in_(ids), manifest_references.c.kind == "blob")
        .distinct()
        .order_by(manifest_references.c.digest)
    )
    return [(str(d), int(s)) for d, s in rows]


async def holders(conn: Connection, digest: str, *, lock: bool = False) -> list[str]:
    """The regions holding ``digest``. ``lock``: their rows locked until the transaction ends
    (PostgreSQL; SQLite's write transactions are serialised already), so that two removals
    deciding on the same blob take turns and the second sees the first's deletion."""
    query = select(region_blobs.c.region).where(region_blobs.c.digest == digest)
    rows = await conn.execute(query.with_for_update() if lock else query)
    return sorted(str(r) for r in rows.scalars())


async def users(conn: Connection, digest: str) -> set[int]:
    """Ids of the catalog versions whose manifest (or one of whose index's manifests) needs ``digest``."""
    direct = (
        await conn.execute(
            select(manifests.c.repository_id, manifests.c.digest)
            .join(manifest_references, manifest_references.c.manifest_id == manifests.c.id)
            .where(manifest_references.c.kind == "blob", manifest_references.c.digest == digest)
        )
    ).all()
    pairs = {(int(r), str(d)) for r, d in direct}
    if direct:
        parent = aliased(manifests)
        found = await conn.execute(
            select(parent.c.repository_id, parent.c.digest)
            .join(manifest_references, manifest_references.c.manifest_id == parent.c.id)
            .where(
                manifest_references.c.kind == "manifest",
                manifest_references.c.digest.in_({d for _, d in pairs}),
            )
        )
        pairs |= {(int(r), str(d)) for r, d in found}
    if not pairs:
        return set()
    rows = await conn.execute(
        select(image_versions.c.id, repositories.c.id, image_versions.c.digest)
        .join(images, images.c.id == image_versions.c.image_id)
        .join(repositories, repositories.c.name == images.c.name)
        .where(
            repositories.c.id.in_({r for r, _ in pairs}), image_versions.c.digest.in_({d for _, d in pairs})
        )
    )
    return {int(v) for v, r, d in rows if (int(r), str(d)) in pairs}


async def needed_elsewhere(conn: Connection, digest: str, region: str, default: str, version_id: int) -> bool:
    """Whether a version other than ``version_id`` needs ``digest`` in ``region`` (a version
    without region rows lives in the default region)."""
    others = (await users(conn, digest)) - {version_id}
    if not others:
        return False
    placed = await conn.execute(
        select(version_regions.c.version_id).where(
            version_regions.c.version_id.in_(others),
            version_regions.c.region == region,
            version_regions.c.status.in_(LIVE),
        )
    )
    if placed.first() is not None:
        return True
    if region != default:
        return False
    unplaced = await conn.execute(
        select(image_versions.c.id).where(
            image_versions.c.id.in_(others),
            ~exists().where(version_regions.c.version_id == image_versions.c.id),
        )
    )
    return unplaced.first() is not None


async def bytes_held(conn: Connection, region: str, default: str) -> tuple[int, int]:
    """(blobs, bytes) the region holds; the default region also holds every blob without rows."""
    held = exists().where(region_blobs.c.digest == blobs.c.digest, region_blobs.c.region == region)
    condition: ColumnElement[bool] = held
    if region == default:
        condition = or_(held, ~exists().where(region_blobs.c.digest == blobs.c.digest))
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(blobs.c.size), 0)).where(
                and_(condition, blobs.c.state == "live")
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def mirror_names(conn: Connection, version_id: int) -> None:
    """The version's old free-text ``regions`` list, kept equal to the regions it is available in
    (what the catalog's lists, filters and pages show) once it has any."""
    names = await conn.execute(
        select(version_regions.c.region)
        .where(version_regions.c.version_id == version_id, version_regions.c.status == "available")
        .order_by(version_regions.c.region)
    )
    listed = json.dumps([str(n) for n in names.scalars()])
    await conn.execute(update(image_versions).where(image_versions.c.id == version_id).values(regions=listed))
