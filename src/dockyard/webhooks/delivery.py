"""Delivering the outbox: every server process runs :meth:`Deliverer.run`; a delivery is claimed
with a lease (a conditional update, so two processes never send it at once), POSTed through the
outbound policy (no redirects; the address connected to is the one checked), and either
delivered (a 2xx answer), retried later with exponential backoff and jitter, or failed after
``max_attempts``. A later delivery for the same endpoint and repository waits until the earlier
one is delivered or failed. A receiver has ``timeout`` seconds for the whole exchange."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import and_, delete, exists, select, update

from dockyard.db.engine import Database
from dockyard.outbound import OutboundClient, OutboundPolicy, OutboundRefused
from dockyard.webhooks.cloudevents import Event, document, headers
from dockyard.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events

log = logging.getLogger("dockyard.webhooks")

MAX_ERROR = 500
PURGE_PERIOD = 3600.0
D = webhook_deliveries
# Built once: an alias of a table is a set of objects in reference cycles, which only the
# garbage collector frees, and the outbox is polled every second in every server process.
_EARLIER = D.alias("earlier")
_UNLEASED = D.c.lease_until.is_(None)  # (an IS NULL comparison is a small cycle too)
# A pending delivery for the same endpoint and repository comes first.
_WAITING = exists().where(
    _EARLIER.c.endpoint_id == D.c.endpoint_id,
    _EARLIER.c.ordering_key == D.c.ordering_key,
    _EARLIER.c.state == "pending",
    _EARLIER.c.id < D.c.id,
)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 10.0  # seconds a receiver may hold one attempt
    max_attempts: int = 10
    backoff_base: float = 5.0  # the first retry waits about this long, then doubling
    backoff_cap: float = 3600.0
    poll: float = 1.0  # seconds between looks at the outbox when not woken
    concurrency: int = 8
    keep_days: float = 30.0  # delivered and failed deliveries stay in the log this long (0: forever)


def backoff(policy: DeliveryPolicy, attempts: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: ``base * 2**(attempts-1)``
    capped, with "equal jitter" (between half and all of it) so that many failed deliveries do
    not all come back at once."""
    full = min(policy.backoff_cap, policy.backoff_base * 2.0 ** min(attempts - 1, 40))
    return full / 2 + draw() * full / 2


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Deliverer:
    def __init__(
        self,
        db: Database,
        outbound: OutboundPolicy,
        cipher: Callable[[], Fernet],
        source: str,
        policy: DeliveryPolicy,
    ) -> None:
        self.db = db
        self.outbound = outbound
        self.cipher = cipher
        self.source = source
        self.policy = policy
        self.wake = asyncio.Event()
        self._client: OutboundClient | None = None  # one pool per process: connections are reused

    def client(self) -> OutboundClient:
        if self._client is None:
            self._client = self.outbound.client(timeout=self.policy.timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set: at once when woken (an event recorded in this
        process), else every ``poll`` seconds."""
        purged_at = 0.0
        try:
            while not stop.is_set():
                try:
                    if self.policy.keep_days > 0 and time.monotonic() - purged_at > PURGE_PERIOD:
                        purged_at = time.monotonic()
                        await self.purge(time.time() - self.policy.keep_days * 86400)
                    busy = await self.deliver_due()
                except Exception:
                    log.exception("webhook delivery failed; retrying")
                    busy = False
                if busy:
                    continue
                self.wake.clear()
                waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
                await asyncio.wait(waits, timeout=self.policy.poll, return_when=asyncio.FIRST_COMPLETED)
                for task in waits:
                    task.cancel()
        finally:
            await self.close()

    async def purge(self, before: float) -> int:
        """Forget deliveries that ended before ``before``, and events no delivery needs; how
        many deliveries went. Idempotent, so every process may run it."""
        async with self.db.write() as conn:
            gone = await conn.execute(delete(D).where(D.c.finished_at < before))
            unused = ~exists().where(D.c.event_id == webhook_events.c.id)
            await conn.execute(delete(webhook_events).where(webhook_events.c.created_at < before, unused))
        return int(gone.rowcount)

    async def deliver_due(self) -> bool:
        """Claim what is due and send it; whether anything was claimed."""
        claimed = await self.claim(self.policy.concurrency)
        if claimed:
            await asyncio.gather(*(self.attempt(delivery_id) for delivery_id in claimed))
        return bool(claimed)

    async def claim(self, limit: int, only: int | None = None) -> list[int]:
        now = time.time()
        free = and_(D.c.state == "pending", _UNLEASED | (D.c.lease_until < now))
        query = select(D.c.id).where(free, D.c.next_attempt_at <= now)
        if only is not None:  # a test: sent whether the endpoint is enabled or not
            query = query.where(D.c.id == only)
        else:  # a disabled endpoint's deliveries wait, in order, until it is enabled again
            enabled = select(webhook_endpoints.c.id).where(webhook_endpoints.c.enabled.is_(True))
            query = query.where(D.c.endpoint_id.in_(enabled))
        # PostgreSQL: processes claiming at once lock different rows instead of all reaching for
        # the same ones (the conditional update below is what makes a claim exclusive anyway).
        query = query.where(~_WAITING).order_by(D.c.id).limit(limit).with_for_update(of=D, skip_locked=True)
        lease = now + self.policy.timeout + 5
        async with self.db.write() as conn:
            candidates = [int(row[0]) for row in await conn.execute(query)]
            if not candidates:
                return []
            won = await conn.execute(
                update(D).where(D.c.id.in_(candidates), free).values(lease_until=lease).returning(D.c.id)
            )
            return sorted(int(row[0]) for row in won)

    async def attempt(self, delivery_id: int, *, last: bool = False) -> Outcome:
        """One attempt of a claimed delivery, recorded (``last``: failed if it fails, as a test)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        webhook_endpoints.c.url,
                        webhook_endpoints.c.secret,
                        webhook_endpoints.c.previous_secret,
                        webhook_endpoints.c.previous_until,
                        webhook_events.c.uid,
                        webhook_events.c.type,
                        webhook_events.c.subject,
                        webhook_events.c.data,
                        webhook_events.c.created_at,
                        D.c.attempts,
                    )
                    .join(webhook_endpoints, webhook_endpoints.c.id == D.c.endpoint_id)
                    .join(webhook_events, webhook_events.c.id == D.c.event_id)
                    .where(D.c.id == delivery_id)
                )
            ).first()
        if row is None:
            return Outcome(None, "the webhook was removed", 0)
        event = Event(row.uid, row.type, row.subject, json.loads(row.data), row.created_at)
        signing = [row.secret]
        if row.previous_secret is not None and (row.previous_until or 0) > time.time():
            signing.append(row.previous_secret)  # a rotation's grace: receivers may still know only it
        secrets = [self.cipher().decrypt(s.encode()).decode() for s in signing]
        outcome = await self.post(row.url, event, secrets)
        await self._finish(delivery_id, int(row.attempts) + 1, outcome, last=last)
        return outcome

    async def post(self, url: str, event: Event, secrets: list[str]) -> Outcome:
        body = document(event, self.source)
        sent = headers(event, secrets, body, int(time.time()))
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            async with (
                asyncio.timeout(self.policy.timeout),
                self.client().stream("POST", url, content=body, headers=sent) as response,
            ):
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"the receiver answered {status}"
        except TimeoutError:
            error = f"no answer within {self.policy.timeout:g} seconds"
        except OutboundRefused as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR] if str(exc) else type(exc).__name__
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    async def _finish(self, delivery_id: int, attempts: int, outcome: Outcome, *, last: bool) -> None:
        now = time.time()
        values: dict[str, object] = {
            "attempts": attempts,
            "last_status": outcome.status,
            "last_error": outcome.error,
            "last_duration_ms": outcome.duration_ms,
            "last_attempt_at": now,
            "lease_until": None,
        }
        if outcome.ok:
            values |= {"state": "delivered", "finished_at": now}
        elif last or attempts >= self.policy.max_attempts:
            values |= {"state": "failed", "finished_at": now}
        else:
            values["next_attempt_at"] = now + backoff(self.policy, attempts)
        async with self.db.write() as conn:
            await conn.execute(update(D).where(D.c.id == delivery_id).values(**values))
