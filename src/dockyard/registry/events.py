"""Events the registry emits. Layers above subscribe in :mod:`dockyard.app`; the registry
never imports them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("dockyard.events")


@dataclass(frozen=True)
class ManifestPushed:
    repository: str
    digest: str
    media_type: str
    tag: str | None
    size: int


@dataclass(frozen=True)
class ManifestDeleted:
    repository: str
    digest: str


@dataclass(frozen=True)
class TagDeleted:
    repository: str
    tag: str


Event = ManifestPushed | ManifestDeleted | TagDeleted
Listener = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def emit(self, event: Event) -> None:
        # A listener's failure must never fail the push that caused the event.
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                log.exception("event listener failed for %r", event)
