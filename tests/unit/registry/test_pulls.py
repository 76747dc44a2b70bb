"""Pull times (:mod:`dockyard.registry.pulls`) on SQLite and PostgreSQL: a flush of more
repositories than one statement may name, and the notes bounded while flushes cannot write."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, insert, select

from dockyard.app.services import Services
from dockyard.auth.tables import repositories, workspaces
from dockyard.registry.pulls import PullRecorder
from dockyard.registry.tables import manifest_pulls

DIGEST = "sha256:" + "d" * 64
MANY = 33_000  # above PostgreSQL's 32,767 parameters per statement


async def test_a_flush_writes_the_pulls_of_more_repositories_than_one_statement_may_name(
    services: Services,
) -> None:
    now = time.time()
    async with services.db.write() as conn:
        await conn.execute(insert(workspaces).values(name="many", kind="org", created_at=now))
        ws = (await conn.execute(select(workspaces.c.id).where(workspaces.c.name == "many"))).scalar_one()
        await conn.execute(
            insert(repositories),
            [{"name": f"many/r{i}", "created_at": now, "workspace_id": ws} for i in range(MANY)],
        )
    recorder = PullRecorder(services.db, clock=lambda: 1000.0)
    for i in range(MANY):
        recorder.pulled(f"many/r{i}", DIGEST)
    assert await recorder.flush() == MANY
    assert recorder.pending == 0
    async with services.db.read() as conn:
        written = await conn.execute(select(func.count(), func.min(manifest_pulls.c.last_pulled_at)))
        assert tuple(written.one()) == (MANY, 1000.0)


async def test_notes_past_twice_the_limit_drop_the_oldest_and_say_so_once(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    recorder = PullRecorder(services.db, clock=lambda: clock[0], max_notes=10)
    with caplog.at_level(logging.WARNING, logger="dockyard.pulls"):
        for i in range(45):  # the flush started at 10 notes has not run yet: never awaited here
            clock[0] = float(i)
            recorder.pulled("lab/app", f"sha256:{i:064x}")
    assert recorder.pending <= 20
    assert recorder._notes[("lab/app", f"sha256:{44:064x}")] == 44.0
    assert ("lab/app", f"sha256:{0:064x}") not in recorder._notes
    assert min(recorder._notes.values()) >= 45 - 20
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1
    flushing = recorder._flushing
    assert flushing is not None
    assert await flushing == 0  # the repository does not exist: nothing written
