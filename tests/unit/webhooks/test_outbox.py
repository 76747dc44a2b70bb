"""The outbox on a real database: which endpoints an event is for, the order deliveries are
claimed in (per endpoint and repository), and claims that two processes never share."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, update

from dockyard.auth.tables import workspaces
from dockyard.db.engine import Database
from dockyard.outbound import OutboundPolicy
from dockyard.webhooks.delivery import Deliverer, DeliveryPolicy
from dockyard.webhooks.outbox import record
from dockyard.webhooks.service import Webhooks
from dockyard.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events

KEY = Fernet(Fernet.generate_key())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    found = Database(database_url)
    yield found
    await found.dispose()


async def _workspace(db: Database, name: str = "lab") -> int:
    async with db.write() as conn:
        stmt = workspaces.insert().values(name=name, kind="org", created_at=time.time())
        return int((await conn.execute(stmt.returning(workspaces.c.id))).scalar_one())


async def _endpoint(db: Database, workspace_id: int, events: list[str], *, enabled: bool = True) -> int:
    async with db.write() as conn:
        stmt = webhook_endpoints.insert().values(
            workspace_id=workspace_id,
            url="http://127.0.0.1:9/hook",
            events=json.dumps(events),
            enabled=enabled,
            secret=KEY.encrypt(b"whsec_AAAA").decode(),
            created_at=time.time(),
        )
        return int((await conn.execute(stmt.returning(webhook_endpoints.c.id))).scalar_one())


def _deliverer(db: Database) -> Deliverer:
    return Deliverer(db, OutboundPolicy(), lambda: KEY, "http://dockyard.test", DeliveryPolicy(timeout=5))


async def _push(db: Database, workspace_id: int, repository: str, tag: str) -> int | None:
    async with db.write() as conn:
        data = {"repository": repository, "tag": tag}
        return await record(
            conn, workspace_id, "image.pushed", f"{repository}:{tag}", data, ordering_key=repository
        )


async def _subjects(db: Database, ids: list[int]) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(webhook_events.c.subject)
            .join(webhook_deliveries, webhook_deliveries.c.event_id == webhook_events.c.id)
            .where(webhook_deliveries.c.id.in_(ids))
            .order_by(webhook_deliveries.c.id)
        )
        return [row[0] for row in rows]


async def _deliver(db: Database, ids: list[int]) -> None:
    async with db.write() as conn:
        stmt = update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids))
        await conn.execute(stmt.values(state="delivered", lease_until=None))


async def test_an_event_goes_to_the_enabled_endpoints_whose_filter_takes_it(db: Database) -> None:
    lab = await _workspace(db)
    assert await _push(db, lab, "lab/a", "1") is None  # no endpoint: nothing written
    everything = await _endpoint(db, lab, [])
    await _endpoint(db, lab, ["tag.deleted"])
    await _endpoint(db, lab, [], enabled=False)
    await _endpoint(db, await _workspace(db, "other"), [])
    event_id = await _push(db, lab, "lab/a", "2")
    assert event_id is not None
    async with db.read() as conn:
        rows = (
            await conn.execute(select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.state))
        ).all()
        assert [tuple(row) for row in rows] == [(everything, "pending")]
        events = (await conn.execute(select(func.count()).select_from(webhook_events))).scalar_one()
        assert events == 1
    with pytest.raises(ValueError, match="unknown webhook event"):
        async with db.write() as conn:
            await record(conn, lab, "image.exploded", "x", {})


async def test_deliveries_are_claimed_in_order_per_repository(db: Database) -> None:
    lab = await _workspace(db)
    await _endpoint(db, lab, [])
    for tag in ("1", "2", "3"):
        await _push(db, lab, "lab/a", tag)
    await _push(db, lab, "lab/b", "1")
    deliverer = _deliverer(db)
    first = await deliverer.claim(10)
    assert await _subjects(db, first) == ["lab/a:1", "lab/b:1"]
    assert await deliverer.claim(10) == []  # claimed, and lab/a:2 waits behind lab/a:1
    await _deliver(db, first)
    second = await deliverer.claim(10)
    assert await _subjects(db, second) == ["lab/a:2"]
    # A claim whose holder died (its lease ran out) is claimed again.
    async with db.write() as conn:
        await conn.execute(
            update(webhook_deliveries)
            .values(lease_until=time.time() - 1)
            .where(webhook_deliveries.c.id.in_(second))
        )
    assert await deliverer.claim(10) == second


async def test_two_processes_never_claim_the_same_delivery(db: Database) -> None:
    lab = await _workspace(db)
    await _endpoint(db, lab, [])
    for i in range(30):
        await _push(db, lab, f"lab/r{i}", "1")
    one, two = _deliverer(db), _deliverer(db)
    claims = await asyncio.gather(*(d.claim(10) for d in (one, two, one, two)))
    every = [delivery for claim in claims for delivery in claim]
    assert len(every) == len(set(every)) == 30  # none twice, and none left for lack of trying


async def test_the_log_forgets_ended_deliveries_after_its_days_but_never_pending_ones(db: Database) -> None:
    lab = await _workspace(db)
    await _endpoint(db, lab, [])
    for tag in ("1", "2", "3"):
        await _push(db, lab, "lab/a", tag)
    deliverer = _deliverer(db)
    ended = await deliverer.claim(10)
    async with db.write() as conn:
        stmt = update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ended))
        await conn.execute(stmt.values(state="failed", finished_at=time.time() - 100))
    assert await deliverer.purge(time.time() - 200) == 0  # not old enough
    assert await deliverer.purge(time.time()) == 1
    async with db.read() as conn:
        left = (
            (await conn.execute(select(webhook_events.c.subject).order_by(webhook_events.c.id)))
            .scalars()
            .all()
        )
        assert left == ["lab/a:2", "lab/a:3"]  # pending ones stay, with their events
    assert await _subjects(db, await deliverer.claim(10)) == ["lab/a:2"]


async def test_a_feature_publishes_a_retention_run_in_a_transaction_of_its_own(db: Database) -> None:
    lab = await _workspace(db)
    await _endpoint(db, lab, ["retention.run"])
    deliverer = _deliverer(db)
    webhooks = Webhooks(db, OutboundPolicy(), lambda: KEY, deliverer)
    await webhooks.publish(lab, "retention.run", "lab/a", {"deleted": ["lab/a:1"], "dry_run": False})
    assert deliverer.wake.is_set()  # this process's delivery loop looks at once
    async with db.read() as conn:
        row = (await conn.execute(select(webhook_events.c.type, webhook_events.c.data))).one()
    assert row.type == "org.dockyard.retention.run"
    assert json.loads(row.data) == {"deleted": ["lab/a:1"], "dry_run": False}
    assert await _subjects(db, await deliverer.claim(10)) == ["lab/a"]


async def test_a_disabled_endpoints_deliveries_wait_until_it_is_enabled_again(db: Database) -> None:
    lab = await _workspace(db)
    endpoint = await _endpoint(db, lab, [])
    await _push(db, lab, "lab/a", "1")
    async with db.write() as conn:
        await conn.execute(update(webhook_endpoints).values(enabled=False))
    assert await _push(db, lab, "lab/a", "2") is None  # not recorded for a disabled endpoint
    deliverer = _deliverer(db)
    assert await deliverer.claim(10) == []
    async with db.write() as conn:
        await conn.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint).values(enabled=True)
        )
    assert await _subjects(db, await deliverer.claim(10)) == ["lab/a:1"]
