"""Repository rows: looked up by name, created on first push.

The repository row is also the lock that keeps online GC and pushes apart: every write
to a repository's manifests, tags or links holds a share lock on the row for its
transaction (``for_write=True``), and GC marks and sweeps one repository while holding
it exclusively (:func:`lock_exclusive`). Creating a repository share-locks its workspace's row
the same way, which a workspace deletion locks exclusively. On SQLite, where writers are serialized by
``BEGIN IMMEDIATE`` anyway, the locking clauses render as nothing.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from dockyard.auth.tables import repositories, workspaces
from dockyard.db.engine import Connection, Database
from dockyard.registry.errors import NameUnknown


async def find_id(conn: Connection, name: str, for_write: bool = False) -> int | None:
    stmt = select(repositories.c.id).where(repositories.c.name == name)
    if for_write:
        stmt = stmt.with_for_update(read=True)
    row = (await conn.execute(stmt)).first()
    return None if row is None else int(row[0])


async def require_id(conn: Connection, name: str, for_write: bool = False) -> int:
    repo_id = await find_id(conn, name, for_write)
    if repo_id is None:
        raise NameUnknown(f"repository {name!r} is not known to the registry")
    return repo_id


async def ensure_id(db: Database, conn: Connection, name: str, *, visibility: str | None = None) -> int:
    """The repository's id, creating the repository if needed (with ``visibility``, or the
    workspace's default); share-locked for this write."""
    repo_id = await find_id(conn, name, for_write=True)
    if repo_id is not None:
        return repo_id
    workspace_id, default = await _workspace_for(db, conn, name.split("/", 1)[0])
    visibility = visibility or default
    stmt = db.insert(repositories).values(
        name=name, created_at=time.time(), workspace_id=workspace_id, visibility=visibility
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    return await require_id(conn, name, for_write=True)


async def _workspace_for(db: Database, conn: Connection, namespace: str) -> tuple[int, str]:
    """The workspace that owns a new repository, and the visibility it starts with.

    The authorizer has already allowed the push; only admins (and the dev and basic
    modes) reach here for a namespace without a workspace, which is then created as an
    organisation with no members, managed by admins.
    """
    query = select(workspaces.c.id, workspaces.c.default_visibility).where(workspaces.c.name == namespace)
    row = (await conn.execute(query)).first()
    if row is not None:
        # Share-lock the workspace until this write commits: a deletion that comes after waits,
        # then sees the repository and is refused; one that came first and deleted it leaves
        # nothing to lock, and the push is told the name is unknown (never a foreign-key 500,
        # never a repository its workspace's cascade missed).
        row = (await conn.execute(query.with_for_update(read=True))).first()
        if row is None:
            raise NameUnknown(f"the workspace {namespace!r} was deleted")
    else:
        stmt = db.insert(workspaces).values(name=namespace, kind="org", created_at=time.time())
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        row = (await conn.execute(query)).one()
    return int(row[0]), str(row[1])


async def lock_exclusive(conn: Connection, repo_id: int) -> bool:
    """Hold the repository against concurrent writes (GC); False if it no longer exists."""
    stmt = select(repositories.c.id).where(repositories.c.id == repo_id).with_for_update()
    return (await conn.execute(stmt)).first() is not None
