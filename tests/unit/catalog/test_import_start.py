"""Starting an import by URL twice at once, on SQLite and PostgreSQL: one start records the
import and queues its job; the other sees it (or is told an import of the version is already
running, a conflict), never a database error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

import dockyard.catalog.imports as imports_module
from dockyard.app.services import Services
from dockyard.catalog.imports import ImportView
from dockyard.catalog.tables import image_imports
from dockyard.errors import Conflict
from dockyard.jobs.tables import jobs
from tests.unit.catalog.factories import WORKSPACE, People

BOTH_READ = 10.0  # seconds the first start waits for the second one to read too


async def test_two_concurrent_starts_of_one_version_record_one_import(
    services: Services, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")
    read_row = imports_module._row
    arrived: list[None] = []
    both = asyncio.Event()

    async def row_once_both_read(*args: Any) -> Any:
        """Both starts find no import before either records one (where the database lets two
        write transactions run at once: SQLite has one writer, so the second waits anyway)."""
        found = await read_row(*args)
        arrived.append(None)
        if len(arrived) >= 2:
            both.set()
        if not services.db.is_sqlite:
            await asyncio.wait_for(both.wait(), BOTH_READ)
        return found

    monkeypatch.setattr(imports_module, "_row", row_once_both_read)
    results = await asyncio.gather(
        services.imports.start(people.developer, "lab/alpine", "3", []),
        services.imports.start(people.owner, "lab/alpine", "3", []),
        return_exceptions=True,
    )
    views = [r for r in results if isinstance(r, ImportView)]
    others = [r for r in results if not isinstance(r, ImportView)]
    assert views, results
    assert all(isinstance(r, Conflict) for r in others), results
    assert all("an import of lab/alpine:3 is already running" in str(r) for r in others)
    async with services.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(image_imports))).scalar_one() == 1
        kinds = (await conn.execute(select(jobs.c.kind))).scalars().all()
    assert kinds.count("catalog.import") == 1
