"""The registry's outbox: an event is written in its change's transaction and applied by the
durable handlers exactly once in effect, in order per repository, retried after a failure."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from dockyard.app.services import Services
from dockyard.auth.base import Principal
from dockyard.db.engine import Connection
from dockyard.registry.events import Actor, Event, ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.registry.outbox import (
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    AfterCommit,
    EventOutbox,
    decode,
    encode,
    failing,
)
from dockyard.registry.tables import registry_outbox
from tests.support.oci import oci_manifest
from tests.unit.registry.factories import push_manifest

REPO = "team/app"


async def pending(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(registry_outbox))).scalar_one())


def test_events_survive_their_encoding() -> None:
    alice = Actor(Principal("alice", kind="user", id=7, scopes=frozenset({"pull"})), "192.0.2.1")
    for event in (
        ManifestPushed(REPO, "sha256:" + "a" * 64, "application/x", "v1", 12, alice),
        ManifestPushed(REPO, "sha256:" + "a" * 64, "application/x", None, 12, None),
        ManifestDeleted(REPO, "sha256:" + "b" * 64, alice),
        TagDeleted(REPO, "v1", None),
    ):
        assert decode(encode(event)) == event


async def test_a_push_is_applied_once_in_its_transaction_and_leaves_no_row(services: Services) -> None:
    outbox = services.events.outbox
    assert outbox is not None
    seen: list[Event] = []

    async def handler(conn: Connection, event: Event) -> AfterCommit | None:
        seen.append(event)
        return None

    outbox.handle_with(handler)
    manifest = oci_manifest()
    await push_manifest(services, REPO, manifest, "v1")
    assert [type(e).__name__ for e in seen] == ["ManifestPushed"]
    assert await pending(services) == 0
    assert await outbox.apply_due() == 0  # nothing left: applying again does nothing


async def test_a_failing_handler_rolls_back_and_the_event_is_applied_later(services: Services) -> None:
    outbox = EventOutbox(services.db)
    applied: list[str] = []
    failures = [RuntimeError("the database went away")]

    async def handler(conn: Connection, event: Event) -> AfterCommit | None:
        if failures:
            raise failures.pop()
        assert isinstance(event, TagDeleted)
        applied.append(event.tag)
        return None

    outbox.handle_with(handler)
    async with services.db.write() as conn:
        await outbox.put(conn, TagDeleted(REPO, "first", None))
        await outbox.put(conn, TagDeleted(REPO, "second", None))
    assert await outbox.apply_due() == 1  # the first failed: the second waits behind it
    assert applied == []
    async with services.db.write() as conn:  # its retry is due now
        await conn.execute(registry_outbox.update().values(next_attempt_at=0))
    assert await outbox.apply_due() == 2
    assert applied == ["first", "second"]
    assert await pending(services) == 0


async def test_a_row_failing_again_and_again_is_kept_counted_and_retried(services: Services) -> None:
    outbox = EventOutbox(services.db)
    failures = [RuntimeError(f"failure {i}") for i in range(MAX_ATTEMPTS + 2)]
    applied: list[str] = []

    async def handler(conn: Connection, event: Event) -> AfterCommit | None:
        if failures:
            raise failures.pop()
        assert isinstance(event, TagDeleted)
        applied.append(event.tag)
        return None

    outbox.handle_with(handler)
    async with services.db.write() as conn:
        await outbox.put(conn, TagDeleted(REPO, "stuck", None))
    for attempt in range(1, MAX_ATTEMPTS + 3):
        async with services.db.write() as conn:  # its retry is due now
            await conn.execute(registry_outbox.update().values(next_attempt_at=0))
        before = time.time()
        assert await outbox.apply_due() == 1
        async with services.db.read() as conn:
            row = (
                await conn.execute(select(registry_outbox.c.attempts, registry_outbox.c.next_attempt_at))
            ).one()
            assert row.attempts == attempt  # never dropped, each failure counted
            assert row.next_attempt_at <= before + MAX_BACKOFF + 60  # the backoff is capped
            assert await failing(conn) == (1 if attempt >= MAX_ATTEMPTS else 0)
    assert applied == []
    async with services.db.write() as conn:
        await conn.execute(registry_outbox.update().values(next_attempt_at=0))
    assert await outbox.apply_due() == 1
    assert applied == ["stuck"]
    assert await pending(services) == 0


async def test_processes_applying_at_once_apply_each_event_once_in_order(services: Services) -> None:
    outboxes = [EventOutbox(services.db) for _ in range(3)]
    applied: list[tuple[str, str]] = []

    async def handler(conn: Connection, event: Event) -> AfterCommit | None:
        assert isinstance(event, TagDeleted)
        await asyncio.sleep(0)  # let the others try meanwhile
        applied.append((event.repository, event.tag))
        return None

    for outbox in outboxes:
        outbox.handle_with(handler)
    async with services.db.write() as conn:
        for i in range(10):
            for repository in ("team/a", "team/b"):
                await outboxes[0].put(conn, TagDeleted(repository, str(i), None))
    await asyncio.gather(*(outbox.apply_due() for outbox in outboxes))
    assert sorted(applied) == sorted((r, str(i)) for i in range(10) for r in ("team/a", "team/b"))
    for repository in ("team/a", "team/b"):
        assert [tag for r, tag in applied if r == repository] == [str(i) for i in range(10)]
    assert await pending(services) == 0
