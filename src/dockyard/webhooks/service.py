"""Managing a workspace's webhooks and reading their delivery log: maintainers of the workspace
(and admins) only, checked here for every edge. Creating one shows its signing secret once;
the secret is stored encrypted (the key of the upstream credentials). Rotating it shows the new
one once; during the grace period the old one signs beside it (Standard Webhooks lists several
signatures in one header), so a receiver can switch without losing or refusing an event."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import Row, delete, func, select, update

from dockyard.auth import audit
from dockyard.auth.guard import Workspace, find_workspace, require_role
from dockyard.auth.policy import Subject
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.outbound import OutboundPolicy, OutboundRefused
from dockyard.webhooks.cloudevents import EVENT_NAMES, PING, new_secret
from dockyard.webhooks.delivery import Deliverer
from dockyard.webhooks.outbox import record
from dockyard.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events
from dockyard.webhooks.views import Delivery, NewWebhook, Webhook

ROLE = "maintainer"
MAX_ENDPOINTS = 20
MAX_URL = 2000
DEFAULT_GRACE_HOURS = 24
MAX_GRACE_HOURS = 24 * 7
STATES = ("pending", "delivered", "failed")
E = webhook_endpoints
D = webhook_deliveries


def check_events(events: list[str]) -> list[str]:
    unknown = [name for name in events if name not in EVENT_NAMES]
    if unknown:
        raise Invalid(f"unknown event {unknown[0][:100]!r}; known: {', '.join(EVENT_NAMES)}")
    return list(dict.fromkeys(events))


def check_url(url: str) -> tuple[str, int]:
    """An http(s) URL without credentials; its host and port."""
    if len(url) > MAX_URL:
        raise Invalid(f"a webhook URL has at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Invalid(f"{url[:100]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"{url[:100]!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise Invalid("a webhook URL carries no user or password (receivers check the signature)")
    return parts.hostname, port


def _webhook(row: Row[Any], workspace: str) -> Webhook:
    return Webhook(
        id=row.id,
        workspace=workspace,
        url=row.url,
        description=row.description,
        events=json.loads(row.events),
        enabled=bool(row.enabled),
        created_at=row.created_at,
        created_by=row.created_by,
        secret_rotated_at=row.secret_rotated_at,
        previous_secret_until=row.previous_until if row.previous_secret is not None else None,
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.uid,
        type=row.type,
        subject=row.subject,
        state=row.state,
        attempts=row.attempts,
        status_code=row.last_status,
        error=row.last_error,
        duration_ms=row.last_duration_ms,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        finished_at=row.finished_at,
    )


class Webhooks:
    def __init__(
        self, db: Database, outbound: OutboundPolicy, cipher: Callable[[], Fernet], deliverer: Deliverer
    ) -> None:
        self.db = db
        self.outbound = outbound
        self.cipher = cipher
        self.deliverer = deliverer

    async def _managed(self, conn: Connection, actor: Subject, workspace: str) -> Workspace:
        ws = await find_workspace(conn, workspace)
        await require_role(conn, actor, ws, ROLE)
        return ws

    async def _row(self, conn: Connection, ws: Workspace, webhook_id: int) -> Row[Any]:
        row = (await conn.execute(select(E).where(E.c.id == webhook_id, E.c.workspace_id == ws.id))).first()
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found in workspace {ws.name!r}")
        return row

    async def _check_destination(self, url: str) -> None:
        host, port = check_url(url)
        try:
            await self.outbound.check(host, port)
        except OutboundRefused as exc:
            raise Invalid(f"webhook URL refused: {exc.message}") from None

    async def all(self, actor: Subject, workspace: str) -> list[Webhook]:
        async with self.db.read() as conn:
            ws = await self._managed(conn, actor, workspace)
            rows = await conn.execute(select(E).where(E.c.workspace_id == ws.id).order_by(E.c.id))
            return [_webhook(row, ws.name) for row in rows]

    async def get(self, actor: Subject, workspace: str, webhook_id: int) -> Webhook:
        async with self.db.read() as conn:
            ws = await self._managed(conn, actor, workspace)
            return _webhook(await self._row(conn, ws, webhook_id), ws.name)

    async def create(
        self,
        actor: Subject,
        workspace: str,
        url: str,
        events: list[str],
        description: str = "",
        enabled: bool = True,
        client_ip: str | None = None,
    ) -> NewWebhook:
        events = check_events(events)
        async with self.db.read() as conn:
            await self._managed(conn, actor, workspace)  # refuse before looking the URL up
        await self._check_destination(url)
        secret = new_secret()
        async with self.db.write() as conn:
            ws = await self._managed(conn, actor, workspace)
            count = (await conn.execute(select(func.count()).where(E.c.workspace_id == ws.id))).scalar_one()
            if count >= MAX_ENDPOINTS:
                raise Conflict(f"workspace {ws.name!r} has {MAX_ENDPOINTS} webhooks already (the most)")
            values = {
                "workspace_id": ws.id,
                "url": url,
                "description": description,
                "events": json.dumps(events),
                "enabled": enabled,
                "secret": self.cipher().encrypt(secret.encode()).decode(),
                "created_at": time.time(),
                "created_by": actor.name,
            }
            new_id = (await conn.execute(E.insert().values(**values).returning(E.c.id))).scalar_one()
            await audit.record(
                conn,
                actor,
                "webhook.create",
                workspace_id=ws.id,
                target=url,
                client_ip=client_ip,
                detail={"id": new_id, "events": events, "enabled": enabled},
            )
            row = await self._row(conn, ws, new_id)
        found = _webhook(row, ws.name)
        return NewWebhook(**vars(found), secret=secret)

    async def update(
        self,
        actor: Subject,
        workspace: str,
        webhook_id: int,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        client_ip: str | None = None,
    ) -> Webhook:
        changes: dict[str, Any] = {}
        if events is not None:
            changes["events"] = json.dumps(check_events(events))
        if description is not None:
            changes["description"] = description
        if enabled is not None:
            changes["enabled"] = enabled
        async with self.db.read() as conn:
            await self._managed(conn, actor, workspace)
        if url is not None:
            await self._check_destination(url)
            changes["url"] = url
        async with self.db.write() as conn:
            ws = await self._managed(conn, actor, workspace)
            before = _webhook(await self._row(conn, ws, webhook_id), ws.name)
            if changes:
                await conn.execute(update(E).where(E.c.id == webhook_id).values(**changes))
            after = _webhook(await self._row(conn, ws, webhook_id), ws.name)
            fields = ("url", "events", "description", "enabled")
            await audit.record(
                conn,
                actor,
                "webhook.update",
                workspace_id=ws.id,
                target=after.url,
                client_ip=client_ip,
                detail={
                    "id": webhook_id,
                    "before": {f: getattr(before, f) for f in fields},
                    "after": {f: getattr(after, f) for f in fields},
                },
            )
            return after

    async def delete(
        self, actor: Subject, workspace: str, webhook_id: int, client_ip: str | None = None
    ) -> None:
        async with self.db.write() as conn:
            ws = await self._managed(conn, actor, workspace)
            row = await self._row(conn, ws, webhook_id)
            await conn.execute(delete(D).where(D.c.endpoint_id == webhook_id))
            await conn.execute(delete(E).where(E.c.id == webhook_id))
            await audit.record(
                conn,
                actor,
                "webhook.delete",
                workspace_id=ws.id,
                target=row.url,
                client_ip=client_ip,
                detail={"id": webhook_id},
            )

    async def rotate_secret(
        self,
        actor: Subject,
        workspace: str,
        webhook_id: int,
        grace_hours: int = DEFAULT_GRACE_HOURS,
        client_ip: str | None = None,
    ) -> NewWebhook:
        """A new signing secret, shown this once. For ``grace_hours`` each event is signed with
        the new and the old secret (two signatures in one header), so receivers can switch
        without losing events; with 0 the old secret stops at once."""
        if not 0 <= grace_hours <= MAX_GRACE_HOURS:
            raise Invalid(f"grace_hours must be between 0 and {MAX_GRACE_HOURS}")
        secret = new_secret()
        now = time.time()
        async with self.db.write() as conn:
            ws = await self._managed(conn, actor, workspace)
            row = await self._row(conn, ws, webhook_id)
            changes = {
                "secret": self.cipher().encrypt(secret.encode()).decode(),
                "previous_secret": row.secret if grace_hours else None,
                "previous_until": now + grace_hours * 3600 if grace_hours else None,
                "secret_rotated_at": now,
            }
            await conn.execute(update(E).where(E.c.id == webhook_id).values(**changes))
            await audit.record(
                conn,
                actor,
                "webhook.rotate_secret",
                workspace_id=ws.id,
                target=row.url,
                client_ip=client_ip,
                detail={"id": webhook_id, "grace_hours": grace_hours},
            )
            found = _webhook(await self._row(conn, ws, webhook_id), ws.name)
        return NewWebhook(**vars(found), secret=secret)

    async def deliveries(
        self,
        actor: Subject,
        workspace: str,
        webhook_id: int,
        *,
        before: int | None = None,
        state: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """The endpoint's delivery log, newest first; page with ``before`` (the last id seen)."""
        if state is not None and state not in STATES:
            raise Invalid(f"state is one of {', '.join(STATES)}")
        async with self.db.read() as conn:
            ws = await self._managed(conn, actor, workspace)
            await self._row(conn, ws, webhook_id)
            query = (
                select(D, webhook_events.c.uid, webhook_events.c.type, webhook_events.c.subject)
                .join(webhook_events, webhook_events.c.id == D.c.event_id)
                .where(D.c.endpoint_id == webhook_id)
            )
            if before is not None:
                query = query.where(D.c.id < before)
            if state is not None:
                query = query.where(D.c.state == state)
            rows = await conn.execute(query.order_by(D.c.id.desc()).limit(limit))
            return [_delivery(row) for row in rows]

    async def test(self, actor: Subject, workspace: str, webhook_id: int) -> Delivery:
        """Send a ``webhook.ping`` now, once (no retries), and answer how it went."""
        async with self.db.write() as conn:
            ws = await self._managed(conn, actor, workspace)
            await self._row(conn, ws, webhook_id)
            data = {"webhook": webhook_id, "workspace": ws.name, "actor": actor.name}
            event_id = await record(conn, ws.id, PING, f"webhook/{webhook_id}", data, endpoint_id=webhook_id)
            assert event_id is not None
            delivery_id = (await conn.execute(select(D.c.id).where(D.c.event_id == event_id))).scalar_one()
        if await self.deliverer.claim(1, only=delivery_id):
            await self.deliverer.attempt(delivery_id, last=True)
            return await self._delivery(delivery_id)
        # A delivery loop took it first: answer once its attempt is recorded.
        deadline = time.monotonic() + self.deliverer.policy.timeout + 5
        while True:
            found = await self._delivery(delivery_id)
            if found.attempts or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.1)

    async def _delivery(self, delivery_id: int) -> Delivery:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(D, webhook_events.c.uid, webhook_events.c.type, webhook_events.c.subject)
                    .join(webhook_events, webhook_events.c.id == D.c.event_id)
                    .where(D.c.id == delivery_id)
                )
            ).one()
        return _delivery(row)

    async def publish(
        self,
        workspace_id: int,
        name: str,
        subject: str,
        data: dict[str, Any],
        *,
        ordering_key: str | None = None,
    ) -> None:
        """Put an event in the outbox in a transaction of its own (for features that cannot
        pass their connection, e.g. retention's ``retention.run``); see :func:`record`."""
        async with self.db.write() as conn:
            await record(conn, workspace_id, name, subject, data, ordering_key=ordering_key)
        self.deliverer.wake.set()
