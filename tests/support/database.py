"""One SQL statement on a running server's own database, from a test: how tests set stored
state that no API sets (times in the past, a lease another process holds) without waiting."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from dockyard.db.engine import Database
from tests.support.servers import RunningRegistry


def database_url(server: RunningRegistry) -> str:
    return server.database_url or f"sqlite+aiosqlite:///{(server.data_dir / 'dockyard.db').resolve()}"


def sql(server: RunningRegistry, statement: str, **params: Any) -> list[Any]:
    """Run ``statement`` (bound ``params``) in one transaction; the rows it returns."""

    async def run() -> list[Any]:
        db = Database(database_url(server))
        try:
            async with db.write() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(run())
