"""Retention on a real metadata database (SQLite and PostgreSQL) with the people of ``lab``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.app.services import Services
from dockyard.storage.memory import MemoryDriver
from tests.unit.catalog.factories import People, people_of_lab
from tests.unit.registry.factories import open_services


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with open_services(database_url, tmp_path, MemoryDriver()) as built:
        yield built


@pytest.fixture
async def people(services: Services) -> People:
    return await people_of_lab(services)
