"""/api/v1 tells a caller who is not signed in to sign in before it judges their request body.

FastAPI checks a body before the endpoint runs (a malformed JSON body even before the
caller is authenticated), so without care an anonymous caller with a bad body to a route
that needs signing in was told "422, fix your body" and, once they had, "401, sign in".
Every change needs a signed-in caller: anonymous or with bad credentials, it is 401 with
the API's Basic challenge, whatever the body; signed in, a bad body is 422. Reads, which
anonymous callers may make, still answer 422 for bad parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dockyard.api.deps import ANONYMOUS_CHANGES
from tests.support.identity import ADMIN, ADMIN_PASSWORD, unique
from tests.support.servers import RunningRegistry

CHALLENGE = 'Basic realm="dockyard"'
PROBLEMS = "https://dockyard.dev/problems/"
MALFORMED = b'{"name": "lab", '  # cut short: not JSON at all
JSON = {"Content-Type": "application/json"}

# Routes that need a signed-in caller, each with a body of the wrong shape.
SIGN_IN_ONLY: list[tuple[str, str, Any]] = [
    ("POST", "/workspaces", {"description": "no name"}),
    ("POST", "/access-requests", {"action": "pull"}),
    ("PUT", "/repository/visibility?name=lab/tool", {"visibility": ["public"]}),
    ("POST", "/images", {"reference": 42}),
    ("PATCH", f"/users/{ADMIN}", {"is_admin": "not a boolean"}),
    ("POST", "/builds", {"context": "local"}),
]
IDS = [f"{method} {path}" for method, path, _ in SIGN_IN_ONLY]


@pytest.fixture
def api(token_registry: RunningRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{token_registry.url}/api/v1", timeout=30) as http:
        yield http


def _assert_sign_in(response: httpx.Response, detail: str = "sign in first") -> None:
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == 401, f"{where}: {response.status_code} {response.text[:300]}"
    assert response.headers["www-authenticate"] == CHALLENGE, where
    assert response.headers["content-type"] == "application/problem+json", where
    problem = response.json()
    assert (problem["type"], problem["status"], problem["detail"]) == (
        PROBLEMS + "unauthenticated",
        401,
        detail,
    )


def _assert_invalid(response: httpx.Response) -> dict[str, Any]:
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == 422, f"{where}: {response.status_code} {response.text[:300]}"
    assert "www-authenticate" not in response.headers, where
    problem: dict[str, Any] = response.json()
    assert (problem["type"], problem["status"]) == (PROBLEMS + "invalid", 422), where
    return problem


@pytest.mark.parametrize(("method", "path", "wrong_shape"), SIGN_IN_ONLY, ids=IDS)
def test_anonymous_callers_are_told_to_sign_in_whatever_the_body(
    api: httpx.Client, method: str, path: str, wrong_shape: Any
) -> None:
    _assert_sign_in(api.request(method, path, content=MALFORMED, headers=JSON))
    _assert_sign_in(api.request(method, path, json=wrong_shape))
    _assert_sign_in(api.request(method, path))  # no body at all


@pytest.mark.parametrize(("method", "path", "wrong_shape"), SIGN_IN_ONLY, ids=IDS)
def test_signed_in_callers_learn_what_is_wrong_with_the_body(
    api: httpx.Client, method: str, path: str, wrong_shape: Any
) -> None:
    auth = (ADMIN, ADMIN_PASSWORD)
    malformed = _assert_invalid(api.request(method, path, content=MALFORMED, headers=JSON, auth=auth))
    assert "JSON decode error" in malformed["detail"]
    wrong = _assert_invalid(api.request(method, path, json=wrong_shape, auth=auth))
    assert wrong["errors"], wrong
    assert all(error["location"].startswith("body") for error in wrong["errors"]), wrong


def test_bad_credentials_with_a_malformed_body_are_refused_as_bad_credentials(
    token_registry: RunningRegistry,
) -> None:
    # From an address of its own, so that this failed login counts against no other test.
    transport = httpx.HTTPTransport(local_address="127.0.0.93")
    with httpx.Client(base_url=f"{token_registry.url}/api/v1", timeout=30, transport=transport) as http:
        response = http.post(
            "/workspaces", content=MALFORMED, headers=JSON, auth=(unique("nobody"), "not-a-password")
        )
        _assert_sign_in(response, "wrong username or password")
        bearer = http.post("/workspaces", content=MALFORMED, headers={**JSON, "Authorization": "Bearer nope"})
        _assert_sign_in(bearer, "the token is unknown, or its account is disabled")


def test_reads_open_to_anonymous_callers_still_check_their_parameters(
    api: httpx.Client, token_registry: RunningRegistry
) -> None:
    problem = _assert_invalid(api.get("/repositories", params={"limit": 0}))
    assert [error["location"] for error in problem["errors"]] == ["query.limit"]
    assert api.get("/repositories").status_code == 200
    assert httpx.get(f"{token_registry.url}/healthz", timeout=30).status_code == 200
    token = httpx.get(f"{token_registry.url}/auth/token", params={"service": "dockyard"}, timeout=30)
    assert token.status_code == 200
    assert token.json()["token"]


def test_the_changes_open_to_anonymous_callers_are_served(api: httpx.Client) -> None:
    # The list the 401-before-422 rule spares names real routes (OpenAPI drops ":path").
    operations = api.get("/openapi.json").json()["paths"]
    for method, path in ANONYMOUS_CHANGES:
        assert method.lower() in operations.get(path.replace(":path", ""), {}), (method, path)
    missing = api.post("/images/nowhere/tool/versions/v1/verify")  # anonymous, and not refused as such
    assert missing.status_code == 404, missing.text
