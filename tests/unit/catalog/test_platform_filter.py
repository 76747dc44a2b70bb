"""The platform filter in SQL (:func:`dockyard.catalog.queries.platform_condition`) answers
exactly what :func:`~dockyard.catalog.queries.platform_matches` answers on the decoded list,
on SQLite and PostgreSQL: for ordinary platforms, and for values that trip a ``LIKE`` on the
JSON text (wildcards, quotes, backslashes, the list's own ``", "`` separator, case, prefixes
without the ``/``) or a JSON decoder (NUL, lone surrogates, non-ASCII)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from dockyard.auth.tables import workspaces
from dockyard.catalog.queries import platform_condition, platform_matches
from dockyard.catalog.tables import image_versions, images
from dockyard.db.engine import Database

ORDINARY = ["linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64", "Linux/AMD64"]
TRICKY = ['a"b', "a\\b", ", ", '", "', "%", "_", "a%b", "a_b", "/", "", "é/x", "a\x00b", "\ud800", "a/\\"]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    now = time.time()
    async with database.write() as conn:
        await conn.execute(insert(workspaces).values(id=1, name="lab", kind="org", created_at=now))
        await conn.execute(
            insert(images).values(id=1, workspace_id=1, name="lab/tool", created_at=now, updated_at=now)
        )
    try:
        yield database
    finally:
        await database.dispose()


async def matching(db: Database, platform_lists: list[list[str]], wanted: str) -> set[int]:
    """Ids (1, 2, ...) of the versions whose platforms the SQL condition matches."""
    now = time.time()
    async with db.write() as conn:
        await conn.execute(delete(image_versions))
        for number, platforms in enumerate(platform_lists, 1):
            await conn.execute(
                insert(image_versions).values(
                    id=number,
                    image_id=1,
                    version=f"v{number}",
                    source="internal",
                    status="available",
                    platforms=json.dumps(platforms),
                    created_at=now,
                    updated_at=now,
                )
            )
    async with db.read() as conn:
        rows = await conn.execute(select(image_versions.c.id).where(platform_condition(wanted, db.is_sqlite)))
        return {row[0] for row in rows}


platforms = st.one_of(
    st.sampled_from(ORDINARY + TRICKY),
    st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=12),
    st.builds(lambda a, b: f"{a}/{b}", st.sampled_from(["linux", "a%", 'q"']), st.text(max_size=4)),
)
# What the API can pass: no NUL (refused) and valid UTF-8 (no lone surrogates).
wanted_values = st.one_of(
    st.sampled_from([p for p in ORDINARY + TRICKY if "\x00" not in p and "\ud800" not in p]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lists=st.lists(st.lists(platforms, max_size=4), min_size=1, max_size=6), wanted=wanted_values)
@example(lists=[["linux/arm64/v8"], ["linux/arm64"], ["linux/arm"], ["Linux/arm64"]], wanted="linux/arm64")
@example(lists=[["a, ", "b"], [", "], ["x", ", "]], wanted=", ")
@example(lists=[['a"b'], ['x"', "b"], ["b"]], wanted="b")
@example(lists=[["a%b"], ["axb"], ["a_b"], ["a\\b"]], wanted="a%b")
@example(lists=[["a\x00b"], ["\ud800"], ["a/\x00"], ["é/x"]], wanted="a")
@example(lists=[[""], ["/x"], ["x"], []], wanted="")
async def test_the_sql_platform_filter_is_platform_matches(
    db: Database, lists: list[list[str]], wanted: str
) -> None:
    expected = {number for number, found in enumerate(lists, 1) if platform_matches(wanted, found)}
    assert await matching(db, lists, wanted) == expected
