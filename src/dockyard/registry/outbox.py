"""The registry's outbox: its events for the durable handlers above it (the catalog, the audit
log), written in the transaction of the push or delete they tell of and applied at least once.

:meth:`EventOutbox.put` adds a row to ``registry_outbox`` in the change's transaction (called by
:meth:`dockyard.registry.events.EventBus.record`). A row is applied in one transaction: the
handlers (wired in ``app``) write with its connection and the row is deleted in it, so an
event is applied exactly once however many processes try; what a handler wants done after the
commit (queueing a job) it returns, and that is idempotent on its side. Rows are applied at once
after the change's commit by the process that made it (:meth:`EventOutbox.after_commit`), and
by every process's loop (:meth:`EventOutbox.run`) for what a crash or a failure left: one
repository's events in the order they were recorded (a row waits while an older one of its
repository is pending), other repositories' in parallel (``SKIP LOCKED`` on PostgreSQL; SQLite
has one writer). A handler's failure rolls the row's transaction back and retries it later with
a backoff capped at ``MAX_BACKOFF``, however many times it takes (a row is never dropped: its
version would never reach the catalog); ``attempts`` counts the failures, and the rows that
failed ``MAX_ATTEMPTS`` times or more are shown by ``/healthz`` (:func:`failing`).

A test seam: ``gate`` (wired when ``DOCKYARD_TEST_OUTBOX_GATE`` names a folder, see
:mod:`dockyard.cluster.gates`) leaves every row to the loop, which waits at the gate before
applying, so that a test can kill the server between an acknowledged push and its handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import aliased

from dockyard.auth.base import Principal
from dockyard.db.engine import Connection, Database
from dockyard.registry.events import Actor, Event, ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.registry.tables import registry_outbox

log = logging.getLogger("dockyard.events")

OUTBOX_GATE_ENV = "DOCKYARD_TEST_OUTBOX_GATE"
MAX_ATTEMPTS = 8  # failures after which a row is reported as failing (it is still retried)
MAX_BACKOFF = 3600.0  # seconds
BATCH = 100  # rows one pass applies before it looks at the stop event again

AfterCommit = Callable[[], Awaitable[None]]
Handler = Callable[[Connection, Event], Awaitable[AfterCommit | None]]
Gate = Callable[[], Awaitable[None]]


def encode(event: Event) -> str:
    actor = None
    if event.actor is not None:
        p = event.actor.principal
        actor = {
            "name": p.name,
            "is_admin": p.is_admin,
            "kind": p.kind,
            "id": p.id,
            "scopes": sorted(p.scopes) if p.scopes is not None else None,
            "client_host": event.actor.client_host,
        }
    doc: dict[str, Any] = {"repository": event.repository, "actor": actor}
    if isinstance(event, ManifestPushed):
        doc |= {
            "type": "pushed",
            "digest": event.digest,
            "media_type": event.media_type,
            "tag": event.tag,
            "size": event.size,
        }
    elif isinstance(event, ManifestDeleted):
        doc |= {"type": "manifest_deleted", "digest": event.digest}
    else:
        doc |= {"type": "tag_deleted", "tag": event.tag}
    return json.dumps(doc, separators=(",", ":"))


def decode(text: str) -> Event:
    doc = json.loads(text)
    actor = None
    if doc["actor"] is not None:
        a = doc["actor"]
        scopes = frozenset(a["scopes"]) if a["scopes"] is not None else None
        actor = Actor(Principal(a["name"], a["is_admin"], a["kind"], a["id"], scopes), a["client_host"])
    repository = doc["repository"]
    if doc["type"] == "pushed":
        return ManifestPushed(repository, doc["digest"], doc["media_type"], doc["tag"], doc["size"], actor)
    if doc["type"] == "manifest_deleted":
        return ManifestDeleted(repository, doc["digest"], actor)
    return TagDeleted(repository, doc["tag"], actor)


async def failing(conn: Connection) -> int:
    """How many rows failed ``MAX_ATTEMPTS`` times or more (each still retried)."""
    count = await conn.execute(
        select(func.count()).select_from(registry_outbox).where(registry_outbox.c.attempts >= MAX_ATTEMPTS)
    )
    return int(count.scalar() or 0)


class EventOutbox:
    def __init__(self, db: Database, gate: Gate | None = None, poll: float = 5.0) -> None:
        self.db = db
        self.gate = gate
        self.poll = poll
        self.wake = asyncio.Event()
        self._handlers: list[Handler] = []

    def handle_with(self, handler: Handler) -> None:
        """Apply each event with ``handler(conn, event)`` in the row's transaction, in the
        order handlers were added; what it returns is awaited after the commit."""
        self._handlers.append(handler)

    async def put(self, conn: Connection, event: Event) -> None:
        """Record ``event`` in the caller's transaction (nothing when no handler is wired)."""
        if not self._handlers:
            return
        now = time.time()
        await conn.execute(
            registry_outbox.insert().values(
                repository=event.repository,
                event=encode(event),
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    async def after_commit(self, repository: str) -> None:
        """The change recording an event of ``repository`` committed: apply what is due there
        now (the loop does it when a gate is wired, or when this fails)."""
        if not self._handlers:
            return
        if self.gate is not None:
            self.wake.set()
            return
        try:
            await self.apply_due(repository)
        except Exception:
            log.exception("applying the events of %s failed; the outbox loop retries", repository)
            self.wake.set()

    async def apply_due(self, repository: str | None = None, limit: int = BATCH) -> int:
        """Apply up to ``limit`` due rows (of ``repository`` only, when given); how many."""
        applied = 0
        while applied < limit and await self._apply_one(repository):
            applied += 1
        return applied

    def _next(self, repository: str | None, now: float, lock: bool = True) -> Any:
        o, older = registry_outbox, aliased(registry_outbox)
        query = (
            select(o.c.id, o.c.event, o.c.attempts)
            .where(
                o.c.next_attempt_at <= now,
                ~exists().where(older.c.repository == o.c.repository, older.c.id < o.c.id),
            )
            .order_by(o.c.id)
            .limit(1)
        )
        if repository is not None:
            query = query.where(o.c.repository == repository)
        if lock and not self.db.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=o)
        return query

    async def _apply_one(self, repository: str | None) -> bool:
        """Apply the next due row; False when there is none."""
        if self.gate is not None:
            async with self.db.read() as conn:
                due = (await conn.execute(self._next(repository, time.time(), lock=False))).first()
            if due is None:
                return False
            await self.gate()
        afters: list[AfterCommit] = []
        row = None
        try:
            async with self.db.write() as conn:
                row = (await conn.execute(self._next(repository, time.time()))).first()
                if row is None:
                    return False
                event = decode(row.event)
                for handler in self._handlers:
                    after = await handler(conn, event)
                    if after is not None:
                        afters.append(after)
                await conn.execute(delete(registry_outbox).where(registry_outbox.c.id == row.id))
        except Exception:
            if row is None:
                raise
            log.exception("applying registry event %s failed (attempt %d)", row.id, row.attempts + 1)
            await self._retry(int(row.id), int(row.attempts) + 1)
            return True
        for after in afters:
            try:
                await after()
            except Exception:
                log.exception("after registry event %s", row.id)
        return True

    async def _retry(self, row_id: int, attempts: int) -> None:
        if attempts >= MAX_ATTEMPTS:
            log.error("registry event %s has failed %d times; retrying it still", row_id, attempts)
        async with self.db.write() as conn:
            await conn.execute(
                update(registry_outbox)
                .where(registry_outbox.c.id == row_id)
                .values(
                    attempts=attempts,
                    next_attempt_at=time.time() + min(MAX_BACKOFF, 2.0 ** min(attempts, 20)),
                )
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Apply what is due until ``stop`` is set: when woken, else every ``poll`` seconds."""
        while not stop.is_set():
            try:
                busy = await self.apply_due() >= BATCH
            except Exception:
                log.exception("the registry's outbox failed; retrying")
                busy = False
            if busy:
                continue
            self.wake.clear()
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
            await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
