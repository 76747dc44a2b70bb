"""The last admin cannot be demoted or disabled: an installation without an admin cannot be
repaired through the API, and a restart does not create a new one. Two admins demoting
themselves at the same moment leave one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard, unique
from tests.support.servers import RunningRegistry, postgres_database

ROUNDS = 5


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fresh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """A server of its own: these tests count every admin there is."""
    kind: str = request.param
    base: Path = tmp_path_factory.mktemp(f"admins-{kind}")
    if kind == "postgres":
        with postgres_database() as url:
            server = start_token_dockyard(kind, base, url)
            yield server
            server.stop()
    else:
        server = start_token_dockyard(kind, base)
        yield server
        server.stop()


def admins(registry: RunningRegistry, who: tuple[str, str] = (ADMIN, ADMIN_PASSWORD)) -> list[str]:
    with Api.connect(registry, *who) as admin:
        return sorted(user["username"] for user in admin.call("GET", "/users") if user["is_admin"])


def patch(registry: RunningRegistry, who: tuple[str, str], username: str, **body: bool) -> httpx.Response:
    return httpx.patch(f"{registry.url}/api/v1/users/{username}", json=body, auth=who, timeout=60)


def test_the_only_admin_cannot_remove_its_own_admin_flag(fresh: RunningRegistry) -> None:
    assert admins(fresh) == [ADMIN]
    refused = patch(fresh, (ADMIN, ADMIN_PASSWORD), ADMIN, is_admin=False)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == "this is the last admin; make another user an admin first"
    assert admins(fresh) == [ADMIN]


def test_an_admin_may_step_down_while_another_remains(fresh: RunningRegistry) -> None:
    other = unique("deputy")
    with Api.connect(fresh, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(other)
        admin.call("PATCH", f"/users/{other}", json={"is_admin": True})
    assert patch(fresh, (other, PASSWORD), other, is_admin=False).status_code == 200
    assert admins(fresh) == [ADMIN]
    # Disabled admins do not count: the remaining enabled one is still the last.
    with Api.connect(fresh, ADMIN, ADMIN_PASSWORD) as admin:
        admin.call("PATCH", f"/users/{other}", json={"is_admin": True})
        admin.call("PATCH", f"/users/{other}", json={"disabled": True})
    assert patch(fresh, (ADMIN, ADMIN_PASSWORD), ADMIN, is_admin=False).status_code == 409
    with Api.connect(fresh, ADMIN, ADMIN_PASSWORD) as admin:
        admin.call("PATCH", f"/users/{other}", json={"is_admin": False, "disabled": False})


def step_down(registry: RunningRegistry, name: str, password: str, start: threading.Barrier) -> int:
    start.wait(timeout=60)
    return patch(registry, (name, password), name, is_admin=False).status_code


def test_two_admins_stepping_down_at_once_leave_one(fresh: RunningRegistry) -> None:
    other = unique("twin")
    with Api.connect(fresh, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(other)
    credentials = {ADMIN: ADMIN_PASSWORD, other: PASSWORD}
    for _ in range(ROUNDS):
        with Api.connect(fresh, ADMIN, ADMIN_PASSWORD) as admin:
            admin.call("PATCH", f"/users/{other}", json={"is_admin": True})
        assert admins(fresh) == sorted([ADMIN, other])
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            futures = {
                name: pool.submit(step_down, fresh, name, credentials[name], start) for name in credentials
            }
            answers = {name: future.result() for name, future in futures.items()}
        assert sorted(answers.values()) == [200, 409]
        [left] = [name for name, status in answers.items() if status == 409]
        assert admins(fresh, (left, credentials[left])) == [left]
        if left != ADMIN:  # put the usual admin back for the next round
            with Api.connect(fresh, other, PASSWORD) as deputy:
                deputy.call("PATCH", f"/users/{ADMIN}", json={"is_admin": True})
            assert patch(fresh, (other, PASSWORD), other, is_admin=False).status_code == 200
        assert admins(fresh) == [ADMIN]
