"""Migrations against real SQLite and PostgreSQL: they reach head, and the schema they build
is the one every feature's ``tables.py`` describes (gathered by :mod:`dockyard.app.schema`)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dockyard.app.schema import metadata
from dockyard.catalog.search_index import FTS_TABLES
from dockyard.db.engine import Database
from dockyard.db.migrate import alembic_config, current_revision, head_revision, upgrade


def _not_fts(name: str | None, kind: str, *_: Any) -> bool:
    """SQLite's FTS5 index of the search documents lives outside the metadata (virtual tables)."""
    return not (kind == "table" and name in FTS_TABLES)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": _not_fts})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - FTS_TABLES


def _downgrade_to_base(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "base")


async def test_upgrade_of_an_empty_database_reaches_head(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        assert head_revision() is not None
        assert await current_revision(db) == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == {*metadata.tables, "alembic_version"}
    finally:
        await db.dispose()


async def test_upgrade_is_idempotent(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await upgrade(db)
        await upgrade(db)
        assert await current_revision(db) == head_revision()
    finally:
        await db.dispose()


async def test_models_and_migrations_agree(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await upgrade(db)
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_differences)
        assert differences == [], "tables.py and the migrations disagree; add a migration"
    finally:
        await db.dispose()


async def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await upgrade(db)
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade_to_base)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        assert await current_revision(db) is None
        await upgrade(db)
        assert await current_revision(db) == head_revision()
    finally:
        await db.dispose()
