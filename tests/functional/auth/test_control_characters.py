"""Control characters in a login name are refused like wrong credentials, on every door.

No username holds one, and PostgreSQL cannot even compare a string that holds NUL: a NUL in
the Basic-auth username was a 500 at ``/auth/token``, ``/v2/`` and ``/api/v1`` (and in the
password grant's form, and in the ``client_id`` stored with a refresh token). Each door now
answers in its own protocol: the token endpoint's OAuth error, the registry's spec envelope,
the API's problem document.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD
from tests.support.servers import RunningRegistry

NAMES = ["a\x00b", "\x00", f"{ADMIN}\x00", "a\x01b", "a\x7fb", "a\nb"]
PROBLEMS = "https://dockyard.dev/problems/"


def basic(username: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@pytest.fixture
def http(token_registry: RunningRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=token_registry.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("username", NAMES, ids=repr)
def test_every_door_refuses_control_characters_in_a_basic_username(http: httpx.Client, username: str) -> None:
    credentials = basic(username, ADMIN_PASSWORD)

    token = http.get("/auth/token", params={"service": "dockyard"}, headers=credentials)
    assert token.status_code == 401, token.text
    assert token.json()["error"] == "unauthorized"
    assert token.headers["www-authenticate"] == 'Basic realm="dockyard"'

    registry = http.get("/v2/", headers=credentials)
    assert registry.status_code == 401, registry.text
    assert [error["code"] for error in registry.json()["errors"]] == ["UNAUTHORIZED"]
    assert registry.headers["www-authenticate"].startswith("Bearer realm=")

    api = http.get("/api/v1/user", headers=credentials)
    assert api.status_code == 401, api.text
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["type"] == PROBLEMS + "unauthenticated"

    form = {"grant_type": "password", "service": "dockyard", "username": username, "password": ADMIN_PASSWORD}
    password_grant = http.post("/auth/token", data=form)
    assert password_grant.status_code == 401, password_grant.text
    assert password_grant.json()["error"] == "unauthorized"


def test_a_client_id_with_control_characters_is_refused(http: httpx.Client) -> None:
    params = {"service": "dockyard", "offline_token": "true", "client_id": "docker\x00"}
    refused = http.get("/auth/token", params=params, headers=basic(ADMIN, ADMIN_PASSWORD))
    assert refused.status_code == 400, refused.text
    assert refused.json() == {
        "error": "invalid_request",
        "error_description": "client_id must not contain control characters",
    }
    params["client_id"] = "docker"
    accepted = http.get("/auth/token", params=params, headers=basic(ADMIN, ADMIN_PASSWORD))
    assert "refresh_token" in accepted.json()
