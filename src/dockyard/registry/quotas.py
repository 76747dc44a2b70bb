"""Quotas on the bytes a workspace stores, each blob counted once per workspace.

Every way bytes become visible in a repository ends in a link (``repository_blobs``): a
monolithic or chunked upload, a cross-repository mount, an upload of a blob the registry
stores already, an archive import (:meth:`~dockyard.registry.blobs.BlobService.adopt`), a
build (buildah pushes through ``/v2``). :meth:`Ledger.charge` runs in the link's own
transaction, before it commits: a blob that does not fit is refused with
:class:`~dockyard.registry.errors.QuotaExceeded` and its link is rolled back with it, so the
manifest that needs the blob is refused as MANIFEST_BLOB_UNKNOWN and nothing is half-visible.
An upstream import or a pull-through cache calls the same ``charge`` when it links a blob.

The count: one ``workspace_blobs`` row per blob linked into at least one repository of the
workspace, and ``workspace_quotas.used_bytes`` their sum. Whatever deletes links (a blob
DELETE, GC's sweep of unreferenced links, a repository or image deletion) calls
:func:`release` in the same transaction; a workspace's deletion takes its rows with it
(foreign-key cascades).

Concurrency: ``charge`` and ``release`` first lock the workspace's quota row
(``SELECT ... FOR UPDATE``), so on PostgreSQL one workspace's accounting runs one transaction
at a time (two parallel pushes cannot both pass a check that only one fits; a release's
"no link left" is checked by a statement that starts after the lock, so it sees every link
committed before it); SQLite serialises all writers anyway. The lock is held from the link to
its commit, a few milliseconds; other workspaces are not held up. Lock order, everywhere:
repository row, then quota row.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from sqlalchemy import Exists, and_, delete, exists, func, select, update

from dockyard.auth.tables import repositories, workspaces
from dockyard.db.engine import Connection, Database
from dockyard.registry.errors import QuotaExceeded
from dockyard.registry.tables import repository_blobs, workspace_blobs, workspace_quotas

_BATCH = 1000  # digests per statement when giving bytes back


def _still_linked() -> Exists:
    """The ``workspace_blobs`` row's blob is linked into a repository of its workspace."""
    return exists().where(
        repository_blobs.c.digest == workspace_blobs.c.digest,
        repository_blobs.c.repository_id.in_(
            # Correlated to the outer statement's row explicitly: left to itself, SQLAlchemy
            # adds ``workspace_blobs`` to this inner FROM, and a blob any other workspace
            # links counted as still linked here (never given back).
            select(repositories.c.id)
            .where(repositories.c.workspace_id == workspace_blobs.c.workspace_id)
            .correlate(workspace_blobs)
        ),
    )


class Ledger:
    """Counts the blobs each workspace stores and enforces its limit; ``default_limit`` is the
    limit of every workspace without a limit of its own (None: unlimited)."""

    def __init__(self, db: Database, default_limit: int | None) -> None:
        self.db = db
        self.default_limit = default_limit

    async def lock(self, conn: Connection, workspace_id: int) -> tuple[int | None, int]:
        """(limit in force, used) of the workspace, its quota row locked until the transaction
        ends (created, with no limit of its own, if the workspace has none yet)."""
        query = (
            select(workspace_quotas.c.limit_bytes, workspace_quotas.c.used_bytes)
            .where(workspace_quotas.c.workspace_id == workspace_id)
            .with_for_update()
        )
        row = (await conn.execute(query)).first()
        if row is None:
            stmt = self.db.insert(workspace_quotas).values(
                workspace_id=workspace_id, limit_bytes=None, used_bytes=0, updated_at=time.time()
            )
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["workspace_id"]))
            row = (await conn.execute(query)).one()
        return self._in_force(row[0]), int(row[1])

    def _in_force(self, own: int | None) -> int | None:
        return self.default_limit if own is None else int(own)

    async def charge(self, conn: Connection, workspace_id: int | None, digest: str, size: int) -> None:
        """Count blob ``digest`` (``size`` bytes) in the workspace, inside the caller's transaction
        and before the link that makes it visible commits. A blob the workspace stores already
        costs nothing; one that does not fit raises :class:`QuotaExceeded` (the caller's
        transaction rolls back, the link with it). ``workspace_id`` None (a repository of no
        workspace): nothing to count."""
        if workspace_id is None:
            return
        limit, used = await self.lock(conn, workspace_id)
        held = await conn.execute(
            select(workspace_blobs.c.size).where(
                workspace_blobs.c.workspace_id == workspace_id, workspace_blobs.c.digest == digest
            )
        )
        if held.first() is not None:
            return
        if limit is not None and used + size > limit:
            raise QuotaExceeded(await _workspace_name(conn, workspace_id), used, size, limit)
        await conn.execute(
            workspace_blobs.insert().values(workspace_id=workspace_id, digest=digest, size=size)
        )
        await conn.execute(
            update(workspace_quotas)
            .where(workspace_quotas.c.workspace_id == workspace_id)
            .values(used_bytes=workspace_quotas.c.used_bytes + size)
        )

    async def check(self, conn: Connection, workspace_id: int, blobs: dict[str, int], what: str) -> None:
        """Refuse early (:class:`QuotaExceeded`, ``what`` naming the bytes) when ``blobs``
        (digest -> size) would not fit; the blobs the workspace stores already cost nothing.
        Not a reservation: each blob is still charged when it is linked."""
        limit, used = await self.usage(conn, workspace_id)
        if limit is None:
            return
        held = {
            row[0]
            for row in await conn.execute(
                select(workspace_blobs.c.digest).where(
                    workspace_blobs.c.workspace_id == workspace_id, workspace_blobs.c.digest.in_(list(blobs))
                )
            )
        }
        adding = sum(size for digest, size in blobs.items() if digest not in held)
        if used + adding > limit:
            raise QuotaExceeded(await _workspace_name(conn, workspace_id), used, adding, limit, what)

    async def usage(self, conn: Connection, workspace_id: int) -> tuple[int | None, int]:
        """(limit in force, used), without locking."""
        own, used = await self.own(conn, workspace_id)
        return self._in_force(own), used

    async def own(self, conn: Connection, workspace_id: int) -> tuple[int | None, int]:
        """(the workspace's own limit or None, used), without locking."""
        row = (
            await conn.execute(
                select(workspace_quotas.c.limit_bytes, workspace_quotas.c.used_bytes).where(
                    workspace_quotas.c.workspace_id == workspace_id
                )
            )
        ).first()
        if row is None:
            return None, 0
        return (None if row[0] is None else int(row[0])), int(row[1])

    async def set_limit(self, conn: Connection, workspace_id: int, limit: int | None, by: str) -> None:
        """Set the workspace's own limit (None: back to the platform default); a limit below what
        it uses is allowed (its pushes of new blobs are then refused until enough is deleted)."""
        await self.lock(conn, workspace_id)
        await conn.execute(
            update(workspace_quotas)
            .where(workspace_quotas.c.workspace_id == workspace_id)
            .values(limit_bytes=limit, updated_at=time.time(), updated_by=by)
        )


async def release(conn: Connection, workspace_id: int | None, digests: Collection[str] | None = None) -> int:
    """Stop counting the blobs (``digests``, or all of the workspace's when None) that no
    repository of the workspace links any more; in the transaction that removed the links,
    after removing them. Returns the bytes given back."""
    if workspace_id is None or (digests is not None and not digests):
        return 0
    locked = await conn.execute(
        select(workspace_quotas.c.workspace_id)
        .where(workspace_quotas.c.workspace_id == workspace_id)
        .with_for_update()
    )
    if locked.first() is None:
        return 0  # nothing was ever counted
    unlinked = and_(workspace_blobs.c.workspace_id == workspace_id, ~_still_linked())
    listed = None if digests is None else list(digests)
    # In batches: a statement takes at most 32,767 parameters (asyncpg; SQLite 32,766).
    batches = [None] if listed is None else [listed[i : i + _BATCH] for i in range(0, len(listed), _BATCH)]
    freed = 0
    for batch in batches:
        condition = unlinked if batch is None else and_(unlinked, workspace_blobs.c.digest.in_(batch))
        uncounted = delete(workspace_blobs).where(condition).returning(workspace_blobs.c.size)
        freed += sum(int(r[0]) for r in (await conn.execute(uncounted)).all())
    if freed:
        await conn.execute(
            update(workspace_quotas)
            .where(workspace_quotas.c.workspace_id == workspace_id)
            .values(used_bytes=workspace_quotas.c.used_bytes - freed)
        )
    return freed


async def linked_digests(conn: Connection, repository: str) -> list[str]:
    """The blobs ``repository`` links: what its deletion may give back (see :func:`release`)."""
    rows = await conn.execute(
        select(repository_blobs.c.digest)
        .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
        .where(repositories.c.name == repository)
    )
    return [row[0] for row in rows]


async def workspace_of(conn: Connection, repository_id: int) -> int | None:
    row = (
        await conn.execute(select(repositories.c.workspace_id).where(repositories.c.id == repository_id))
    ).first()
    return None if row is None or row[0] is None else int(row[0])


async def recount(conn: Connection, workspace_id: int) -> int:
    """The bytes the workspace's rows add up to (a check of ``used_bytes``, for tests and repair)."""
    total = await conn.execute(
        select(func.coalesce(func.sum(workspace_blobs.c.size), 0)).where(
            workspace_blobs.c.workspace_id == workspace_id
        )
    )
    return int(total.scalar_one())


async def _workspace_name(conn: Connection, workspace_id: int) -> str:
    row = (await conn.execute(select(workspaces.c.name).where(workspaces.c.id == workspace_id))).first()
    return str(row[0]) if row is not None else str(workspace_id)
