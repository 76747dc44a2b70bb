"""Events the registry emits. Layers above subscribe in :mod:`dockyard.app`; the registry
never imports them.

Each event names who caused it (:class:`Actor`), as the caller of the service that emits it
passed it: the /v2 router the principal it let in, an archive import the user creating the
version. ``None`` is the system itself (maintenance, tests).

Listeners hear an event after its change committed, in the process that made it (nothing
durable: a crash may skip them); recorders (:meth:`EventBus.record_with`) hear it inside the
change's transaction, before the client is answered (the webhooks' outbox), and their failure
fails the change. What must not be lost (the catalog, the audit log) is a handler of the
registry's own outbox (:mod:`dockyard.registry.outbox`), given to the bus as ``outbox``: the
event is written there in the change's transaction and applied at least once after it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.auth.base import Principal
from dockyard.db.engine import Connection

if TYPE_CHECKING:
    from dockyard.registry.outbox import EventOutbox

log = logging.getLogger("dockyard.events")


@dataclass(frozen=True)
class Actor:
    """Who acted: the principal, and the client's address (after trusted proxies) when the
    action came over the network."""

    principal: Principal
    client_host: str | None = None


@dataclass(frozen=True)
class ManifestPushed:
    repository: str
    digest: str
    media_type: str
    tag: str | None
    size: int
    actor: Actor | None


@dataclass(frozen=True)
class ManifestDeleted:
    repository: str
    digest: str
    actor: Actor | None


@dataclass(frozen=True)
class TagDeleted:
    repository: str
    tag: str
    actor: Actor | None


Event = ManifestPushed | ManifestDeleted | TagDeleted
Listener = Callable[[Event], Awaitable[None]]
Recorder = Callable[[Connection, Event], Awaitable[None]]


class EventBus:
    def __init__(self, outbox: EventOutbox | None = None) -> None:
        self.outbox = outbox
        self._listeners: list[Listener] = []
        self._recorders: list[Recorder] = []

    def record_with(self, recorder: Recorder) -> None:
        """Call ``recorder`` with each event inside the transaction of its change."""
        self._recorders.append(recorder)

    async def record(self, conn: Connection, event: Event) -> None:
        for recorder in self._recorders:
            await recorder(conn, event)
        if self.outbox is not None:
            await self.outbox.put(conn, event)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def emit(self, event: Event) -> None:
        # The outbox's events are applied first (the catalog then has the version the
        # listeners may look at). A failure must never fail the push that caused the event.
        if self.outbox is not None:
            try:
                await self.outbox.after_commit(event.repository)
            except Exception:
                log.exception("applying the outbox failed after %r", event)
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                log.exception("event listener failed for %r", event)
