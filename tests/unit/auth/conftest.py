"""Identity services on a fresh metadata database (SQLite and PostgreSQL, see ``database_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.auth.factories import Env, open_env


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    async with open_env(database_url) as built:
        yield built
