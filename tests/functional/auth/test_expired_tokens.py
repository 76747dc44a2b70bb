"""An expired or revoked personal access or robot token is refused saying so (not "wrong
username or password"), on every door: the token endpoint (GET and POST), Basic on /v2, and
Basic and Bearer on /api/v1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api, unique
from tests.support.matrix import expire_token
from tests.support.servers import RunningRegistry


@pytest.fixture
def http(token_registry: RunningRegistry) -> Iterator[httpx.Client]:
    # From an address of its own, so that these failed logins count against no other test.
    transport = httpx.HTTPTransport(local_address="127.0.0.94")
    with httpx.Client(base_url=token_registry.url, timeout=30, transport=transport) as client:
        yield client


def refusals(http: httpx.Client, login: str, secret: str, api: bool) -> dict[str, tuple[int, str]]:
    """door -> (status, the message the client is shown)."""
    token_get = http.get("/auth/token", params={"service": "dockyard"}, auth=(login, secret))
    token_post = http.post(
        "/auth/token",
        data={"grant_type": "password", "username": login, "password": secret, "service": "dockyard"},
    )
    v2 = http.get("/v2/", auth=(login, secret))
    answers: dict[str, httpx.Response] = {"GET token": token_get, "POST token": token_post, "/v2": v2}
    if api:
        answers["/api/v1 basic"] = http.get("/api/v1/user", auth=(login, secret))
        answers["/api/v1 bearer"] = http.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    return {door: (response.status_code, _message(response)) for door, response in answers.items()}


def _message(response: httpx.Response) -> str:
    if response.status_code == 200:
        return ""
    body: Any = response.json()
    if "error_description" in body:
        return str(body["error_description"])
    if "errors" in body:
        return str(body["errors"][0]["message"])
    return str(body["detail"])


def test_an_expired_personal_access_token_says_it_expired(
    token_registry: RunningRegistry, http: httpx.Client
) -> None:
    user = unique("expiring")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(user)
    with Api.connect(token_registry, user, "user-secret-password") as api:
        token_id, secret = api.personal_token(["pull", "api"])
        revoked_id, revoked = api.personal_token(["pull", "api"], name="old")
        api.revoke_token(revoked_id)
    assert {status for status, _ in refusals(http, user, secret, api=True).values()} == {200}
    assert expire_token(token_registry, token_id) == 1

    for door, (status, message) in refusals(http, user, secret, api=True).items():
        assert status == 401, door
        assert message.startswith("this token expired on "), (door, message)
        assert message.endswith("; create a new one"), (door, message)
    for door, (status, message) in refusals(http, user, revoked, api=True).items():
        assert (status, message.split(" on ")[0]) == (401, "this token was revoked"), door
    # Under another name the secret is just wrong: its holder is not who they say.
    for door, (status, message) in refusals(http, unique("someone"), secret, api=False).items():
        assert (status, message) == (401, "wrong username or password"), door


def test_an_expired_robot_token_says_it_expired(token_registry: RunningRegistry, http: httpx.Client) -> None:
    workspace = unique("robots")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_workspace(workspace)
        admin.create_robot(workspace, "ci")
        secret = admin.robot_token(workspace, "ci", ["pull"])
        [info] = admin.call("GET", f"/workspaces/{workspace}/robots/ci/tokens")
    login = f"{workspace}+ci"
    assert {status for status, _ in refusals(http, login, secret, api=False).values()} == {200}
    assert expire_token(token_registry, int(info["id"])) == 1

    for door, (status, message) in refusals(http, login, secret, api=False).items():
        assert status == 401, door
        assert message.startswith("this token expired on "), (door, message)
