"""Two requests creating the same team or robot at once: one wins, the other is told the
name is taken (409), never a database error (a 500 on PostgreSQL before)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from dockyard.auth.policy import Subject
from dockyard.errors import Conflict
from tests.unit.auth.factories import Env, audit_log, new_user

Create = Callable[[Env, Subject], Awaitable[object]]


def _team(env: Env, owner: Subject) -> Awaitable[object]:
    return env.workspaces.create_team(owner, "lab", "analysts")


def _robot(env: Env, owner: Subject) -> Awaitable[object]:
    return env.tokens.create_robot(owner, "lab", "ci")


@pytest.mark.parametrize(
    ("create", "refusal", "action", "target"),
    [
        (_team, "already has a team 'analysts'", "team.create", "analysts"),
        (_robot, "already has a robot 'ci'", "robot.create", "lab+ci"),
    ],
    ids=["team", "robot"],
)
async def test_concurrent_creations_make_one_and_refuse_the_rest(
    env: Env, create: Create, refusal: str, action: str, target: str
) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    results = await asyncio.gather(*(create(env, olga) for _ in range(8)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Conflict)]
    made = [r for r in results if not isinstance(r, BaseException)]
    assert (len(made), len(refused)) == (1, 7), results
    assert all(refusal in str(r) for r in refused)
    assert [e.target for e in await audit_log(env, action)] == [target]
