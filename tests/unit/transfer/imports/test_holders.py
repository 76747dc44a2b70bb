"""Whether the process holding an archive import lives, asked from another process: its
liveness lock (flock on SQLite's machine, an advisory lock on PostgreSQL) dies with it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from dockyard.app.services import build_upload_locks
from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Database
from dockyard.settings import Settings
from dockyard.transfer.imports.holders import Holders, parse_holder

HOLDER = """
import asyncio, sys
from pathlib import Path
from dockyard.app.services import build_upload_locks
from dockyard.db.engine import Database
from dockyard.settings import Settings
from dockyard.transfer.imports.holders import Holders

async def main() -> None:
    settings = Settings(data_dir=Path(sys.argv[2]), database_url=sys.argv[1])
    holders = Holders(build_upload_locks(settings, Database(settings.effective_database_url)))
    await holders.hold()
    print(holders.me, flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main())
"""


@pytest.fixture
async def locks(database_url: str, tmp_path: Path) -> AsyncIterator[UploadLocks]:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    db = Database(settings.effective_database_url)
    try:
        yield build_upload_locks(settings, db)
    finally:
        await db.dispose()


async def until_gone(holders: Holders, holder: str) -> None:
    deadline = time.monotonic() + 30
    while not await holders.gone(holder):
        assert time.monotonic() < deadline, f"{holder} still taken for alive"
        await asyncio.sleep(0.05)


async def test_a_holder_lives_until_its_process_is_killed(
    locks: UploadLocks, database_url: str, tmp_path: Path
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, database_url, str(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    asker = Holders(locks)
    try:
        assert child.stdout is not None
        holder = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().strip()
        assert parse_holder(holder) is not None
        assert not await asker.gone(holder)
        assert not await asker.gone(holder), "asking leaves it held"
    finally:
        child.kill()
        await child.wait()
    await until_gone(asker, holder)
    assert not await asker.gone(asker.me)


async def test_a_holder_recorded_by_an_older_dockyard_is_left_to_its_lease(locks: UploadLocks) -> None:
    assert parse_holder("build-host:4242") is None
    assert not await Holders(locks).gone("build-host:4242")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_holder_whose_database_connection_dropped_holds_again(
    locks: UploadLocks, database_url: str
) -> None:
    """PostgreSQL dropped the connection that held the lock (a restart, a network cut): the
    others take the process for gone until it takes the lock again (its next import, or its
    periodic check while it holds imports)."""
    holders, asker = Holders(locks), Holders(locks)
    await holders.hold()
    try:
        assert not await asker.gone(holders.me)
        dsn = Database(database_url).raw_dsn
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid <> pg_backend_pid() AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        finally:
            await admin.close()
        await until_gone(asker, holders.me)

        await holders.hold()

        assert not await asker.gone(holders.me)
    finally:
        await holders.close()
