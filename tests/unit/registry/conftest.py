"""Registry services on a real metadata database (SQLite and PostgreSQL) and a storage driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.app.services import Services
from dockyard.storage.memory import MemoryDriver
from tests.unit.registry.factories import open_services


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """Services on a migrated database and the memory driver, with a one-hour GC grace period."""
    async with open_services(database_url, tmp_path, MemoryDriver()) as built:
        yield built
