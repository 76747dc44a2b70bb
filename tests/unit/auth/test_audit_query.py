"""Reading the audit log: the filters the admin's audit page offers (actor, action, time
range, workspace) combine, and paging backwards by id keeps them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from dockyard.auth import audit
from dockyard.auth.tables import audit_log
from tests.unit.auth.factories import Env, new_user

DAY = 86400.0
START = 1_700_000_000.0


async def _log(env: Env) -> None:
    """Six events a day apart: olga and mia alternate; every third one is in 'lab'."""
    olga = await new_user(env, "olga")
    mia = await new_user(env, "mia")
    lab = await env.workspaces.create(olga, "lab")
    async with env.db.write() as conn:
        await conn.execute(audit_log.delete())  # only the events below
        for day in range(6):
            actor = olga if day % 2 == 0 else mia
            await audit.record(
                conn,
                actor,
                "member.set" if day < 3 else "team.create",
                workspace_id=lab.id if day % 3 == 0 else None,
                target=f"day{day}",
            )
        rows = (await conn.execute(audit_log.select().order_by(audit_log.c.id))).mappings().all()
        for day, row in enumerate(rows):
            await conn.execute(
                update(audit_log).where(audit_log.c.id == row["id"]).values(at=START + day * DAY)
            )


async def _targets(env: Env, **filters: Any) -> list[str]:
    return [entry.target for entry in await audit.query(env.db, **filters)]


async def test_actor_action_and_time_filters_combine(env: Env) -> None:
    await _log(env)
    assert await _targets(env) == ["day5", "day4", "day3", "day2", "day1", "day0"]
    assert await _targets(env, actor_name="mia") == ["day5", "day3", "day1"]
    assert await _targets(env, action="member.set", actor_name="olga") == ["day2", "day0"]
    # since is included, until is not
    assert await _targets(env, since=START + DAY, until=START + 4 * DAY) == ["day3", "day2", "day1"]
    assert await _targets(env, actor_name="mia", since=START + 2 * DAY) == ["day5", "day3"]
    assert await _targets(env, actor_name="nobody") == []


async def test_paging_backwards_keeps_the_filters_and_entries_name_their_workspace(env: Env) -> None:
    await _log(env)
    first = await audit.query(env.db, actor_name="olga", limit=2)
    assert [entry.target for entry in first] == ["day4", "day2"]
    rest = await audit.query(env.db, actor_name="olga", before_id=first[-1].id, limit=2)
    assert [entry.target for entry in rest] == ["day0"]
    by_target = {entry.target: entry for entry in await audit.query(env.db)}
    assert by_target["day0"].workspace == "lab"
    assert by_target["day3"].workspace == "lab"
    assert by_target["day1"].workspace is None
    assert by_target["day1"].workspace_id is None
