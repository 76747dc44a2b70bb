"""Brute force: repeated failed logins are locked out (on every door: the token endpoint's
GET and POST, Basic on /v2 and on /api/v1) and written to the audit log; the lock ends.
Parallel guesses cannot get past the limit; an address past its own limit still lets correct
credentials in; the client's address is read from X-Forwarded-For only behind a trusted
proxy, for the throttle and the audit log alike."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.identity import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    TokenAuth,
    start_token_dockyard,
    unique,
)
from tests.support.oci import OciClient, oci_manifest
from tests.support.servers import RunningRegistry, postgres_database

MAX_FAILURES = 3
MAX_PER_IP = 8
LOCKOUT = 3
PROXY = "127.0.0.50"  # a trusted reverse proxy; so is every address in PROXY_NET
PROXY_NET = "127.0.1.0/24"
PARALLEL = 64


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    kind: str = request.param
    env = {
        "DOCKYARD_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "DOCKYARD_LOGIN_MAX_FAILURES_PER_IP": str(MAX_PER_IP),
        "DOCKYARD_LOGIN_LOCKOUT_SECONDS": str(LOCKOUT),
        "DOCKYARD_TRUSTED_PROXIES": json.dumps([PROXY, PROXY_NET]),
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


def client(
    registry: RunningRegistry, source: str = "127.0.0.1", forwarded_for: str | None = None, **kwargs: Any
) -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.x address works on loopback),
    sending ``X-Forwarded-For`` if given."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return httpx.Client(
        base_url=registry.url,
        timeout=60,
        headers=headers,
        transport=httpx.HTTPTransport(local_address=source),
        **kwargs,
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


def audit_entries(registry: RunningRegistry, action: str, target: str) -> list[dict[str, Any]]:
    with Api.connect(registry, ADMIN, ADMIN_PASSWORD) as admin:
        entries: list[dict[str, Any]] = admin.call("GET", "/audit", params={"action": action, "limit": 1000})
    return [entry for entry in entries if entry["target"] == target]


def test_parallel_guesses_evaluate_at_most_the_limit(guarded: RunningRegistry) -> None:
    user = new_user(guarded)
    start = threading.Barrier(PARALLEL)
    limits = httpx.Limits(max_connections=PARALLEL)
    with client(guarded, "127.0.0.8", limits=limits) as http:

        def guess(n: int) -> int:
            start.wait(timeout=60)
            return token_get(http, user, f"parallel-guess-{n}").status_code

        with ThreadPoolExecutor(PARALLEL) as pool:
            answers = Counter(pool.map(guess, range(PARALLEL)))
    # 401: the password was checked and was wrong; 429: refused before any check.
    assert answers == {401: MAX_FAILURES, 429: PARALLEL - MAX_FAILURES}
    assert len(
        audit_entries(guarded, "login.failed", user) + audit_entries(guarded, "login.locked", user)
    ) == (MAX_FAILURES)


def test_parallel_correct_logins_are_never_locked_out(guarded: RunningRegistry) -> None:
    """A cluster starting its jobs with one user's credentials: PARALLEL logins at once from
    one address, far more than MAX_FAILURES, all get a token (identical attempts share one
    check; a password remembered as correct is no guess). A disabled account is then refused
    at once, remembered or not, and a re-enabled one gets in again."""
    user = new_user(guarded)
    start = threading.Barrier(PARALLEL)
    limits = httpx.Limits(max_connections=PARALLEL)
    with client(guarded, "127.0.0.9", limits=limits) as http:

        def login(_: int) -> int:
            start.wait(timeout=60)
            return token_get(http, user, PASSWORD).status_code

        with ThreadPoolExecutor(PARALLEL) as pool:
            assert Counter(pool.map(login, range(PARALLEL))) == {200: PARALLEL}
        failures = audit_entries(guarded, "login.failed", user) + audit_entries(guarded, "login.locked", user)
        assert failures == []
        with Api.connect(guarded, ADMIN, ADMIN_PASSWORD) as admin:
            admin.call("PATCH", f"/users/{user}", json={"disabled": True})
            assert token_get(http, user, PASSWORD).status_code == 401
            admin.call("PATCH", f"/users/{user}", json={"disabled": False})
        assert token_get(http, user, PASSWORD).status_code == 200


def test_an_address_past_its_limit_still_lets_correct_credentials_in(guarded: RunningRegistry) -> None:
    owner, other = new_user(guarded), new_user(guarded)
    with Api.connect(guarded, owner, PASSWORD) as api:
        _, token = api.personal_token(["pull", "api"])
    with client(guarded, "127.0.0.6") as http:
        # Made-up names from one address (the flood of the issue): one failure each, no
        # name is locked, and at MAX_PER_IP the address is.
        guesses = [token_get(http, unique("nobody"), "guess-password").status_code for _ in range(MAX_PER_IP)]
        assert guesses == [401] * MAX_PER_IP
        # Now every failure from it is answered 429, made-up name or real one...
        assert token_get(http, unique("nobody"), "guess-password").status_code == 429
        wrong = token_get(http, other, "wrong-password")
        assert wrong.status_code == 429
        assert 1 <= int(wrong.headers["retry-after"]) <= LOCKOUT + 1
        # ...but correct credentials pass, on every door: everyone behind a shared address
        # (a NAT, a proxy) is not locked out by one guesser.
        assert token_get(http, other, PASSWORD).status_code == 200
        assert token_get(http, owner, token).status_code == 200
        assert http.get("/api/v1/user", auth=(owner, PASSWORD)).status_code == 200
        assert http.get("/api/v1/user", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert http.get("/v2/", auth=(owner, token)).status_code == 200
    assert audit_entries(guarded, "login.locked", other) == []


def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(guarded: RunningRegistry) -> None:
    user = new_user(guarded)
    # Through the trusted proxy: the rightmost address that is not itself a trusted proxy
    # (127.0.1.5 is one; 198.51.100.1 was written by the client and proves nothing).
    chain = "198.51.100.1, 203.0.113.9, 127.0.1.5"
    with client(guarded, PROXY, chain) as proxied:
        assert token_get(proxied, user, "wrong-password").status_code == 401
    # From any other peer the header is ignored, loopback included.
    for peer in ("127.0.0.1", "127.0.0.9"):
        with client(guarded, peer, "203.0.113.77") as direct:
            assert token_get(direct, user, "wrong-password").status_code == 401
    addresses = [entry["client_ip"] for entry in audit_entries(guarded, "login.failed", user)]
    assert sorted(addresses) == ["127.0.0.1", "127.0.0.9", "203.0.113.9"]


def test_the_throttle_counts_each_forwarded_client_on_its_own(guarded: RunningRegistry) -> None:
    user = new_user(guarded)
    with client(guarded, PROXY, "203.0.113.20") as first:
        statuses = [token_get(first, user, f"wrong-{i}-password").status_code for i in range(MAX_FAILURES)]
        assert statuses == [401] * MAX_FAILURES
        assert token_get(first, user, PASSWORD).status_code == 429
    with client(guarded, PROXY, "203.0.113.21") as second:
        assert token_get(second, user, PASSWORD).status_code == 200, "another client behind the same proxy"
    assert [entry["client_ip"] for entry in audit_entries(guarded, "login.locked", user)] == ["203.0.113.20"]


def test_a_forged_x_forwarded_for_from_an_untrusted_peer_neither_evades_nor_moves_the_throttle(
    guarded: RunningRegistry,
) -> None:
    user = new_user(guarded)
    peer = "127.0.0.12"  # not a trusted proxy: its X-Forwarded-For is the client's own claim
    for i in range(MAX_FAILURES):
        with client(guarded, peer, f"203.0.113.{40 + i}") as forged:
            assert token_get(forged, user, f"wrong-{i}-password").status_code == 401
    with client(guarded, peer, "203.0.113.99") as forged:
        assert token_get(forged, user, PASSWORD).status_code == 429, "a new forged address is the same peer"
    with client(guarded, PROXY, "203.0.113.40") as proxied:
        # The forged address was never counted: a client behind the trusted proxy that really
        # has it is not locked out.
        assert token_get(proxied, user, PASSWORD).status_code == 200
    assert {entry["client_ip"] for entry in audit_entries(guarded, "login.failed", user)} == {peer}
    assert [entry["client_ip"] for entry in audit_entries(guarded, "login.locked", user)] == [peer]


def test_pushes_are_audited_with_the_client_address(guarded: RunningRegistry) -> None:
    user = new_user(guarded)
    repo = f"{user}/audited"
    manifest = oci_manifest()
    for source, forwarded, expected in (
        (PROXY, "203.0.113.30", "203.0.113.30"),
        ("127.0.0.10", None, "127.0.0.10"),
        ("127.0.0.11", "203.0.113.31", "127.0.0.11"),  # forged from an untrusted peer: ignored
    ):
        with client(guarded, source, forwarded, auth=TokenAuth(user, PASSWORD)) as http:
            assert OciClient(http).push(repo, manifest, f"from-{expected}").status_code == 201
    pushes = audit_entries(guarded, "manifest.push", f"{repo}@{manifest.digest}")
    assert sorted(entry["client_ip"] for entry in pushes) == ["127.0.0.10", "127.0.0.11", "203.0.113.30"]
