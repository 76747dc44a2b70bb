"""Repository rows: looked up by name, created on first push."""

from __future__ import annotations

import time

from sqlalchemy import select

from dockyard.db.engine import Connection, Database
from dockyard.db.tables import repositories
from dockyard.oci.errors import ErrorCode, RegistryError


async def find_id(conn: Connection, name: str) -> int | None:
    row = (await conn.execute(select(repositories.c.id).where(repositories.c.name == name))).first()
    return None if row is None else int(row[0])


async def require_id(conn: Connection, name: str) -> int:
    repo_id = await find_id(conn, name)
    if repo_id is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, f"repository {name!r} is not known to the registry")
    return repo_id


async def ensure_id(db: Database, conn: Connection, name: str) -> int:
    """The repository's id, creating the repository if needed (inside a write transaction)."""
    repo_id = await find_id(conn, name)
    if repo_id is not None:
        return repo_id
    stmt = db.insert(repositories).values(name=name, created_at=time.time())
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    return await require_id(conn, name)
