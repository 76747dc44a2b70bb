"""Two requests creating the same team or robot at once: one wins, the other is told the
name is taken (409), never a database error (a 500 on PostgreSQL before)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from dockyard.auth.errors import Conflict
from tests.unit.auth.factories import Env, audit_log, new_user


async def _race(make: Callable[[], Awaitable[object]], times: int = 8) -> list[object]:
    return list(await asyncio.gather(*(make() for _ in range(times)), return_exceptions=True))


async def test_concurrent_creations_of_one_team_make_one_and_refuse_the_rest(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    results = await _race(lambda: env.workspaces.create_team(olga, "lab", "analysts"))
    refused = [r for r in results if isinstance(r, Conflict)]
    made = [r for r in results if not isinstance(r, BaseException)]
    assert (len(made), len(refused)) == (1, 7), results
    assert all("already has a team 'analysts'" in str(r) for r in refused)
    assert [e.target for e in await audit_log(env, "team.create")] == ["analysts"]


async def test_concurrent_creations_of_one_robot_make_one_and_refuse_the_rest(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    results = await _race(lambda: env.tokens.create_robot(olga, "lab", "ci"))
    refused = [r for r in results if isinstance(r, Conflict)]
    made = [r for r in results if not isinstance(r, BaseException)]
    assert (len(made), len(refused)) == (1, 7), results
    assert all("already has a robot 'ci'" in str(r) for r in refused)
    assert [e.target for e in await audit_log(env, "robot.create")] == ["lab+ci"]
