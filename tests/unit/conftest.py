"""Fixtures for unit tests: hermetic settings and a fresh metadata database per test.

``database_url`` and ``empty_database_url`` run a test twice: on SQLite (a file under
``tmp_path``) and on a PostgreSQL database created for that test alone.

Speed, without sharing state between tests: the schema is migrated once per session into
a template (a SQLite file, a PostgreSQL template database) and every test gets its own
copy. ``CREATE DATABASE ... TEMPLATE`` still takes ~0.15 s and ``DROP DATABASE`` ~0.3 s (it
waits for a checkpoint), so both run in background threads while the next test runs: the
next database is prepared ahead, and a finished test's database is dropped behind it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
import pytest_asyncio

from dockyard.db.engine import Database
from dockyard.db.migrate import upgrade

PG_ADMIN = os.environ.get("DOCKYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
DATABASES = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _no_dockyard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read ``DOCKYARD_*`` variables; a developer's shell must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("DOCKYARD_") and not name.startswith("DOCKYARD_TEST_"):
            monkeypatch.delenv(name)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def postgres_url(name: str) -> str:
    return f"postgresql+asyncpg://{PG_ADMIN.split('://', 1)[1]}/{name}"


def _psql(statement: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("psql is missing: run scripts/setup.sh (PostgreSQL client) first")
    for attempt in range(3):
        try:
            subprocess.run([psql, f"{PG_ADMIN}/postgres", "-qc", statement], check=True, capture_output=True)
            return
        except OSError:  # seen once under heavy load: fork/exec failing with EFAULT; the statement never ran
            if attempt == 2:
                raise
            time.sleep(1.0)


async def migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


class MetadataDatabases:
    """Makes fresh metadata databases for one test session and drops them at its end."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.created: list[str] = []
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-prefetch")
        self._dropper = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pg-drop")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def _create_postgres(self, template: str | None = None) -> str:
        name = f"dockyard_unit_{uuid.uuid4().hex[:16]}"
        self.created.append(name)
        _psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    @staticmethod
    def _drop_postgres(name: str) -> None:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def discard(self, url: str) -> None:
        """Drop a test's PostgreSQL database in the background (SQLite files go with tmp_path)."""
        if url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            self.created.remove(name)
            self._drops.append(self._dropper.submit(self._drop_postgres, name))

    async def empty_postgres(self) -> str:
        return postgres_url(await asyncio.to_thread(self._create_postgres))

    async def migrated_postgres(self) -> str:
        if self._pg_template is None:
            template = await asyncio.to_thread(self._create_postgres)
            await migrate(postgres_url(template))
            self._pg_template = template
        if self._next is None:
            self._next = self._prefetch.submit(self._create_postgres, self._pg_template)
        name = await asyncio.wrap_future(self._next)
        self._next = self._prefetch.submit(self._create_postgres, self._pg_template)
        return postgres_url(name)

    async def migrated_sqlite(self, path: Path) -> str:
        if self._sqlite_template is None:
            template = self.scratch / "template.db"
            await migrate(sqlite_url(template))
            self._sqlite_template = template
        # The backup API copies a consistent database whatever state the WAL is in.
        with (
            closing(sqlite3.connect(self._sqlite_template)) as source,
            closing(sqlite3.connect(path)) as copy,
        ):
            source.backup(copy)
        return sqlite_url(path)

    def close(self) -> None:
        """Drop every database still there (the template, the one prepared ahead)."""
        self._prefetch.shutdown(wait=True)
        for name in self.created:
            self._drops.append(self._dropper.submit(self._drop_postgres, name))
        self._dropper.shutdown(wait=True)
        for drop in self._drops:
            drop.result()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def metadata_databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MetadataDatabases]:
    databases = MetadataDatabases(tmp_path_factory.mktemp("metadata-templates"))
    try:
        yield databases
    finally:
        await asyncio.to_thread(databases.close)


@pytest.fixture(params=DATABASES)
async def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, metadata_databases: MetadataDatabases
) -> AsyncIterator[str]:
    """A database with no tables at all."""
    kind: str = request.param
    if kind == "sqlite":
        url = sqlite_url(tmp_path / "metadata.db")
    elif kind == "postgres":
        url = await metadata_databases.empty_postgres()
    else:
        raise ValueError(kind)
    yield url
    metadata_databases.discard(url)


@pytest.fixture(params=DATABASES)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, metadata_databases: MetadataDatabases
) -> AsyncIterator[str]:
    """A fresh database of this test's own, migrated to the newest schema, with no rows."""
    kind: str = request.param
    if kind == "sqlite":
        url = await metadata_databases.migrated_sqlite(tmp_path / "metadata.db")
    elif kind == "postgres":
        url = await metadata_databases.migrated_postgres()
    else:
        raise ValueError(kind)
    yield url
    metadata_databases.discard(url)
