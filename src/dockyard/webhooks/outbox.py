"""The outbox: an event is written in the transaction of the change it tells of, with one
pending delivery per endpoint that wants it, so an answered request never loses its event
(a server killed after answering delivers it when it starts again).

Features above this package call :func:`record` with their own connection; the registry (below)
calls :class:`RegistryRecorder` through its event bus's in-transaction hook, wired in ``app``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import select

from dockyard.auth.tables import repositories
from dockyard.db.engine import Connection
from dockyard.registry.events import Event as RegistryEvent
from dockyard.registry.events import ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.tenancy.requests import AccessRequest
from dockyard.webhooks.cloudevents import EVENT_NAMES, PING, event_type
from dockyard.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events

MAX_KEY = 300


def wants(filter_json: str, name: str) -> bool:
    """Whether an endpoint's ``events`` filter (a JSON list; empty: all) takes ``name``."""
    names = json.loads(filter_json)
    return name == PING or not names or name in names


async def record(
    conn: Connection,
    workspace_id: int,
    name: str,
    subject: str,
    data: dict[str, Any],
    *,
    ordering_key: str | None = None,
    endpoint_id: int | None = None,
) -> int | None:
    """Put the event ``name`` (one of :data:`EVENT_NAMES`, or the ping) in the outbox, in the
    caller's transaction, with a delivery for each enabled endpoint of the workspace whose filter
    takes it (only ``endpoint_id`` when given). Deliveries with the same ``ordering_key`` (the
    repository; default the subject) reach an endpoint in the order they were recorded.
    Returns the event's row id, None when no endpoint wants it (nothing is written)."""
    if name != PING and name not in EVENT_NAMES:
        raise ValueError(f"unknown webhook event {name!r}")
    query = select(webhook_endpoints.c.id, webhook_endpoints.c.events).where(
        webhook_endpoints.c.workspace_id == workspace_id
    )
    if endpoint_id is None:
        query = query.where(webhook_endpoints.c.enabled.is_(True))
    else:
        query = query.where(webhook_endpoints.c.id == endpoint_id)
    targets = [int(row[0]) for row in await conn.execute(query) if wants(row[1], name)]
    if not targets:
        return None
    now = time.time()
    event_id = (
        await conn.execute(
            webhook_events.insert()
            .values(
                uid=str(uuid.uuid4()),
                workspace_id=workspace_id,
                type=event_type(name),
                subject=subject,
                data=json.dumps(data),
                created_at=now,
            )
            .returning(webhook_events.c.id)
        )
    ).scalar_one()
    key = (ordering_key or subject)[:MAX_KEY]
    if name == PING:
        key = f"ping {event_id}"  # a test never waits behind real events, nor they behind it
    await conn.execute(
        webhook_deliveries.insert(),
        [
            {
                "endpoint_id": target,
                "event_id": event_id,
                "ordering_key": key,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for target in targets
        ],
    )
    return int(event_id)


def _actor(event: RegistryEvent) -> str | None:
    return event.actor.principal.name if event.actor is not None else None


class RegistryRecorder:
    """The registry's pushes and deletes as webhook events, in the registry's transaction."""

    async def __call__(self, conn: Connection, event: RegistryEvent) -> None:
        found = (
            await conn.execute(
                select(repositories.c.workspace_id).where(repositories.c.name == event.repository)
            )
        ).first()
        if found is None or found[0] is None:
            return
        data: dict[str, Any] = {"repository": event.repository, "actor": _actor(event)}
        if isinstance(event, ManifestPushed):
            data |= {
                "digest": event.digest,
                "tag": event.tag,
                "media_type": event.media_type,
                "size": event.size,
            }
            at = f":{event.tag}" if event.tag else f"@{event.digest}"
            name, subject = "image.pushed", event.repository + at
        elif isinstance(event, ManifestDeleted):
            data["digest"] = event.digest
            name, subject = "image.deleted", f"{event.repository}@{event.digest}"
        else:
            assert isinstance(event, TagDeleted)
            data["tag"] = event.tag
            name, subject = "tag.deleted", f"{event.repository}:{event.tag}"
        await record(conn, int(found[0]), name, subject, data, ordering_key=event.repository)


async def record_access_request(
    conn: Connection, workspace_id: int, change: str, request: AccessRequest
) -> None:
    """An access request created or approved (the tenancy hook), in its transaction."""
    data = {
        "request": request.id,
        "repository": request.repository,
        "requester": request.requester,
        "action": request.action,
        "status": request.status,
        "decided_by": request.decided_by,
        "grant_expires_at": request.grant_expires_at,
    }
    subject = f"{request.repository}/access-requests/{request.id}"
    await record(conn, workspace_id, f"access.{change}", subject, data, ordering_key=request.repository)
