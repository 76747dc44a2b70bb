"""Brute-force protection: the login throttle on an injected clock, and logins behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

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


async def attempt(env: Env, username: str, ip: str | None) -> float | None:
    """Reserve an attempt: None if it may be evaluated, else the seconds until it may."""
    try:
        await env.throttle.reserve(username, ip)
    except Throttled as exc:
        return exc.retry_after
    return None


async def test_a_user_and_address_lock_once_the_maximum_attempts_are_reserved(env: Env) -> None:
    assert [await attempt(env, "alice", IP) for _ in range(3)] == [None, None, None]
    assert await attempt(env, "alice", IP) == 300.0
    assert await attempt(env, "Alice", IP) == 300.0  # names are not case sensitive
    # the lock is on this name from this address
    assert await attempt(env, "alice", OTHER_IP) is None
    assert await attempt(env, "bob", IP) is None


async def test_concurrent_attempts_never_evaluate_more_than_the_limit(env: Env) -> None:
    results = await asyncio.gather(*(attempt(env, "alice", IP) for _ in range(20)))
    assert sum(result is None for result in results) == 3


async def test_a_missing_address_counts_as_one_address(env: Env) -> None:
    for _ in range(3):
        await env.throttle.reserve("alice", None)
    assert await attempt(env, "alice", None) == 300.0
    assert await attempt(env, "alice", IP) is None


async def test_a_success_resets_the_users_count(env: Env) -> None:
    await env.throttle.reserve("alice", IP)
    await env.throttle.reserve("alice", IP)
    await env.throttle.succeeded("alice", IP)
    assert [await attempt(env, "alice", IP) for _ in range(3)] == [None, None, None]


async def test_attempts_outside_the_window_do_not_add_up(env: Env) -> None:
    for _ in range(5):
        assert await attempt(env, "alice", IP) is None
        env.clock.advance(61)


async def test_a_lock_ends_after_the_lockout_and_counting_starts_afresh(env: Env) -> None:
    for _ in range(3):
        await env.throttle.reserve("alice", IP)
    env.clock.advance(100)
    assert await attempt(env, "alice", IP) == 200.0
    env.clock.advance(199)
    assert await attempt(env, "alice", IP) == 1.0
    env.clock.advance(1)
    assert [await attempt(env, "alice", IP) for _ in range(3)] == [None, None, None]
    assert await attempt(env, "alice", IP) == 300.0


async def test_an_address_counts_failures_whatever_the_names(env: Env) -> None:
    for n in range(1, 5):
        assert (await env.throttle.failed(IP)).number == n
    assert await env.throttle.address_lock(IP) is None
    assert (await env.throttle.failed(IP)).locked_until == env.clock() + 300.0
    assert await env.throttle.address_lock(IP) == 300.0
    assert await env.throttle.address_lock(OTHER_IP) is None


async def test_a_locked_login_is_refused_before_its_password_is_checked(env: Env) -> None:
    alice = await new_user(env, "alice")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate("alice", "wrong password", IP)
    checked = env.passwords.verified
    with pytest.raises(Throttled, match="too many failed logins; try again in 301 seconds") as caught:
        await env.accounts.authenticate("alice", PASSWORD, IP)
    assert caught.value.retry_after == 300.0
    assert env.passwords.verified == checked

    actions = [(entry.action, entry.target, entry.client_ip) for entry in await audit_log(env)]
    assert [action for action in actions if action[0].startswith("login.")] == [
        ("login.failed", "alice", IP),
        ("login.failed", "alice", IP),
        ("login.locked", "alice", IP),
    ]

    # from another address, alice still gets in
    assert (await env.accounts.authenticate("alice", PASSWORD, OTHER_IP)).id == alice.id
    # her password is now remembered as correct, and still refused from the locked address
    with pytest.raises(Throttled):
        await env.accounts.authenticate("alice", PASSWORD, IP)
    # once the lock ends, she gets in from this one too, without a second argon2 check
    env.clock.advance(300)
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
    assert env.passwords.verified == checked + 1


async def test_tokens_are_never_locked_but_failed_ones_count_against_the_address(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate("alice", "wrong password", IP)
    # a token cannot be guessed: the user's lock does not stop a valid one
    assert (await env.accounts.authenticate("alice", token.secret, IP)).id == alice.id
    for name in ("mallory", "lab+ci"):
        with pytest.raises(AuthenticationFailed, match="wrong username or password"):
            await env.accounts.authenticate(name, "dyk_" + "x" * 40, IP)
    assert (await env.throttle.failed(IP)).number == 3 + 2 + 1


async def test_the_address_limit_never_refuses_a_correct_credential(env: Env) -> None:
    alice = await new_user(env, "alice")
    await new_user(env, "bob")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    for n in range(5):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate(f"guess{n}", "wrong password", IP)
    assert [entry.target for entry in await audit_log(env, "login.locked")] == ["guess4"]
    # made-up names are now refused without a password check
    checked = env.passwords.verified
    with pytest.raises(Throttled):
        await env.accounts.authenticate("guess9", "wrong password", IP)
    assert env.passwords.verified == checked
    # a wrong password of a real name is checked, and refused the same way
    with pytest.raises(Throttled):
        await env.accounts.authenticate("bob", "wrong password", IP)
    # the right password and a valid token get in
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
    assert (await env.accounts.authenticate("alice", token.secret, IP)).id == alice.id


class FullDisk:
    """The database with its volume full: reads work, every write finds no space."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self) -> AbstractAsyncContextManager[Connection]:
        return self.db.read()

    async def fetch_one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        return await self.db.fetch_one(sql, *args)

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        return self.db.insert(table)

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


async def test_concurrent_correct_logins_share_one_check_and_lock_nothing(env: Env) -> None:
    """Twenty logins at once, more than the limit of three: one reservation, one argon2."""
    alice = await new_user(env, "alice")
    logins = await asyncio.gather(*(env.accounts.authenticate("alice", PASSWORD, IP) for _ in range(20)))
    assert {subject.id for subject in logins} == {alice.id}
    assert env.passwords.verified == 1
    assert await env.throttle.user_lock("alice", IP) is None
    # Remembered: more logins than the limit, one after the other, reserve nothing either.
    for _ in range(5):
        assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
    assert env.passwords.verified == 1
    assert await audit_log(env, "login.failed") == []


async def test_concurrent_identical_guesses_count_once(env: Env) -> None:
    await new_user(env, "alice")
    guesses = await asyncio.gather(
        *(env.accounts.authenticate("alice", "wrong password", IP) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(guess, AuthenticationFailed) for guess in guesses)
    assert env.passwords.verified == 1
    assert len(await audit_log(env, "login.failed")) == 1
    # two more different guesses reach the limit of three: the name is locked
    for password in ("guess two", "guess three"):
        with pytest.raises(AuthenticationFailed):
            await env.accounts.authenticate("alice", password, IP)
    with pytest.raises(Throttled):
        await env.accounts.authenticate("alice", PASSWORD, IP)


async def test_a_remembered_password_stops_working_when_the_account_changes(env: Env) -> None:
    alice = await new_user(env, "alice")
    admin = await new_user(env, "root", admin=True)
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id  # remembered
    await env.accounts.update_user(admin, "alice", disabled=True)
    with pytest.raises(AuthenticationFailed):
        await env.accounts.authenticate("alice", PASSWORD, IP)
    await env.accounts.update_user(admin, "alice", disabled=False, password="a new password")
    with pytest.raises(AuthenticationFailed):
        await env.accounts.authenticate("alice", PASSWORD, IP)
    assert (await env.accounts.authenticate("alice", "a new password", IP)).id == alice.id
