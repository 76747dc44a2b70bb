"""Brute-force protection: the login throttle on an injected clock, and logins behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import cast

import pytest

from dockyard.auth.errors import AuthenticationFailed, Throttled
from dockyard.auth.throttle import ThrottlePolicy
from dockyard.db.engine import Connection, Database
from dockyard.volumes import METADATA_DATABASE, InsufficientStorage
from tests.unit.auth.factories import PASSWORD, Env, audit_log, new_user, open_env

POLICY = ThrottlePolicy(max_failures=3, max_failures_per_ip=5, window_seconds=60.0, lockout_seconds=300.0)
IP = "192.0.2.10"
OTHER_IP = "198.51.100.7"


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    async with open_env(database_url, policy=POLICY) as built:
        yield built


async def locked_for(env: Env, username: str, ip: str | None) -> float | None:
    """Seconds until the login may be tried again, or None if it may be tried now."""
    try:
        await env.throttle.check(username, ip)
    except Throttled as exc:
        return exc.retry_after
    return None


async def test_a_user_and_address_lock_after_the_maximum_failures(env: Env) -> None:
    assert not await env.throttle.failed("alice", IP)
    assert not await env.throttle.failed("alice", IP)
    assert await locked_for(env, "alice", IP) is None
    assert await env.throttle.failed("alice", IP)
    assert await locked_for(env, "alice", IP) == 300.0
    assert await locked_for(env, "Alice", IP) == 300.0  # names are not case sensitive
    # the lock is on this name from this address
    assert await locked_for(env, "alice", OTHER_IP) is None
    assert await locked_for(env, "bob", IP) is None


async def test_an_address_locks_after_its_own_maximum_whatever_the_names(env: Env) -> None:
    for n in range(4):
        assert not await env.throttle.failed(f"user{n}", IP)
    assert await env.throttle.failed("user4", IP)
    assert await locked_for(env, "someone-new", IP) == 300.0
    assert await locked_for(env, "someone-new", OTHER_IP) is None


async def test_a_missing_address_counts_as_one_address(env: Env) -> None:
    for _ in range(3):
        await env.throttle.failed("alice", None)
    assert await locked_for(env, "alice", None) == 300.0
    assert await locked_for(env, "alice", IP) is None


async def test_a_success_resets_the_users_count(env: Env) -> None:
    await env.throttle.failed("alice", IP)
    await env.throttle.failed("alice", IP)
    await env.throttle.succeeded("alice", IP)
    assert not await env.throttle.failed("alice", IP)
    assert not await env.throttle.failed("alice", IP)
    assert await locked_for(env, "alice", IP) is None


async def test_failures_outside_the_window_do_not_add_up(env: Env) -> None:
    for _ in range(4):
        assert not await env.throttle.failed("alice", IP)
        env.clock.advance(61)
    assert await locked_for(env, "alice", IP) is None


async def test_a_lock_ends_after_the_lockout(env: Env) -> None:
    for _ in range(3):
        await env.throttle.failed("alice", IP)
    env.clock.advance(100)
    assert await locked_for(env, "alice", IP) == 200.0
    env.clock.advance(199)
    assert await locked_for(env, "alice", IP) == 1.0
    env.clock.advance(1)
    assert await locked_for(env, "alice", IP) is None
    # and counting starts afresh
    assert not await env.throttle.failed("alice", IP)
    assert await locked_for(env, "alice", IP) is None


async def test_a_locked_login_is_refused_before_its_password_is_checked(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate("alice", "wrong password", IP)
    checked = env.passwords.verified
    with pytest.raises(Throttled, match="too many failed logins; try again in 301 seconds") as caught:
        await env.accounts.authenticate("alice", PASSWORD, IP)
    assert caught.value.retry_after == 300.0
    with pytest.raises(Throttled):
        await env.accounts.authenticate("alice", token.secret, IP)
    assert env.passwords.verified == checked

    actions = [(entry.action, entry.target, entry.client_ip) for entry in await audit_log(env)]
    assert [action for action in actions if action[0].startswith("login.")] == [
        ("login.failed", "alice", IP),
        ("login.failed", "alice", IP),
        ("login.locked", "alice", IP),
    ]

    # from another address, alice still gets in
    assert (await env.accounts.authenticate("alice", PASSWORD, OTHER_IP)).id == alice.id
    # and once the lock ends, from this one too
    env.clock.advance(300)
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
    assert env.passwords.verified == checked + 2


async def test_unknown_users_and_robots_are_throttled_the_same_way(env: Env) -> None:
    for name in ("mallory", "lab+ci"):
        for _ in range(3):
            with pytest.raises(AuthenticationFailed):
                await env.accounts.authenticate(name, "dyk_" + "x" * 40, OTHER_IP if name == "lab+ci" else IP)
    with pytest.raises(Throttled):
        await env.accounts.authenticate("mallory", PASSWORD, IP)
    with pytest.raises(Throttled):
        await env.accounts.authenticate("lab+ci", "dyk_" + "y" * 40, OTHER_IP)
    assert len(await audit_log(env, "login.locked")) == 2


async def test_the_address_limit_stops_guessing_across_names(env: Env) -> None:
    await new_user(env, "alice")
    for n in range(5):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate(f"guess{n}", "wrong password", IP)
    checked = env.passwords.verified
    with pytest.raises(Throttled):
        await env.accounts.authenticate("alice", PASSWORD, IP)
    assert env.passwords.verified == checked
    assert [entry.target for entry in await audit_log(env, "login.locked")] == ["guess4"]
    assert await env.accounts.authenticate("alice", PASSWORD, OTHER_IP)


class FullDisk:
    """The database with its volume full: reads work, every write finds no space."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self) -> AbstractAsyncContextManager[Connection]:
        return self.db.read()

    def write(self) -> AbstractAsyncContextManager[Connection]:
        raise InsufficientStorage(METADATA_DATABASE)


async def test_on_a_full_disk_logins_work_and_failures_still_lock(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    full = cast(Database, FullDisk(env.db))
    env.accounts.db = env.throttle.db = full

    # Logging in writes nothing it depends on (last login, last use of a token).
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
    assert (await env.accounts.authenticate("alice", token.secret, IP)).id == alice.id
    # Failures the database cannot take are counted in this process, with the same limits.
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate("alice", "wrong password", IP)
    with pytest.raises(Throttled):
        await env.accounts.authenticate("alice", PASSWORD, IP)
    assert (await env.accounts.authenticate("alice", PASSWORD, OTHER_IP)).id == alice.id
    env.clock.advance(300)
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
