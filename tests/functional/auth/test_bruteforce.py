"""Brute force: repeated failed logins are locked out (on every door: the token endpoint's
GET and POST, Basic on /v2 and on /api/v1) and written to the audit log; the lock ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard, unique
from tests.support.servers import RunningRegistry, postgres_database

MAX_FAILURES = 3
MAX_PER_IP = 8
LOCKOUT = 3


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    kind: str = request.param
    env = {
        "DOCKYARD_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "DOCKYARD_LOGIN_MAX_FAILURES_PER_IP": str(MAX_PER_IP),
        "DOCKYARD_LOGIN_LOCKOUT_SECONDS": str(LOCKOUT),
    }
    base: Path = tmp_path_factory.mktemp(f"bruteforce-{kind}")
    if kind == "postgres":
        with postgres_database() as url:
            server = start_token_dockyard(kind, base, url, env)
            yield server
            server.stop()
    else:
        server = start_token_dockyard(kind, base, "", env)
        yield server
        server.stop()


def client(registry: RunningRegistry, source: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.x address works on loopback)."""
    return httpx.Client(
        base_url=registry.url, timeout=30, transport=httpx.HTTPTransport(local_address=source)
    )


def token_get(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.get("/auth/token", params={"service": "dockyard"}, auth=(username, password))


def new_user(registry: RunningRegistry) -> str:
    name = unique("victim")
    with Api.connect(registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(name)
    return name


def test_lockout_on_every_door_then_it_ends(guarded: RunningRegistry) -> None:
    user = new_user(guarded)
    with client(guarded, "127.0.0.2") as http:
        statuses = [token_get(http, user, f"wrong-{i}-password").status_code for i in range(MAX_FAILURES)]
        assert statuses == [401] * MAX_FAILURES
        locked = token_get(http, user, PASSWORD)
        assert locked.status_code == 429, "the right password is refused while locked"
        assert 1 <= int(locked.headers["retry-after"]) <= LOCKOUT + 1
        assert locked.json()["error"] == "too_many_requests"
        post = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": user, "password": PASSWORD, "service": "dockyard"},
        )
        assert post.status_code == 429
        v2 = http.get(f"/v2/{user}/tool/tags/list", auth=(user, PASSWORD))
        assert v2.status_code == 429
        assert v2.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert "retry-after" in v2.headers
        api = http.get("/api/v1/user", auth=(user, PASSWORD))
        assert api.status_code == 429
        assert api.headers["content-type"] == "application/problem+json"
    with client(guarded, "127.0.0.3") as elsewhere:
        assert token_get(elsewhere, user, PASSWORD).status_code == 200, "the lock is per user and address"
    with client(guarded, "127.0.0.2") as http:
        deadline = time.monotonic() + LOCKOUT + 10
        response = token_get(http, user, PASSWORD)
        while response.status_code == 429 and time.monotonic() < deadline:
            time.sleep(0.5)
            response = token_get(http, user, PASSWORD)
        assert response.status_code == 200, "the lock ends"


def test_failures_are_audited(guarded: RunningRegistry) -> None:
    user = new_user(guarded)
    with client(guarded, "127.0.0.4") as http:
        for i in range(MAX_FAILURES):
            token_get(http, user, f"bad-{i}-password")
    with Api.connect(guarded, ADMIN, ADMIN_PASSWORD) as admin:
        failed = admin.call("GET", "/audit", params={"action": "login.failed", "limit": 1000})
        locked = admin.call("GET", "/audit", params={"action": "login.locked", "limit": 1000})
    mine_failed = [e for e in failed if e["target"] == user]
    mine_locked = [e for e in locked if e["target"] == user]
    assert len(mine_failed) == MAX_FAILURES - 1
    assert len(mine_locked) == 1
    assert {e["client_ip"] for e in mine_failed + mine_locked} == {"127.0.0.4"}


def test_unknown_users_are_throttled_the_same_way(guarded: RunningRegistry) -> None:
    ghost = unique("nobody")
    with client(guarded, "127.0.0.5") as http:
        statuses = [token_get(http, ghost, "whatever-password").status_code for _ in range(MAX_FAILURES + 1)]
    assert statuses == [401] * MAX_FAILURES + [429]


def test_one_address_trying_many_users_is_locked_out(guarded: RunningRegistry) -> None:
    users = [new_user(guarded) for _ in range(MAX_PER_IP + 1)]
    with client(guarded, "127.0.0.6") as http:
        statuses = [token_get(http, users[i], f"guess-{i}-password").status_code for i in range(MAX_PER_IP)]
        assert statuses == [401] * MAX_PER_IP, "one failure each: no user is locked"
        assert token_get(http, users[-1], PASSWORD).status_code == 429, "but the address is"
    with client(guarded, "127.0.0.7") as other:
        assert token_get(other, users[-1], PASSWORD).status_code == 200
