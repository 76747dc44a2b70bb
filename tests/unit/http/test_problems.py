"""Problem documents (RFC 9457) from the one table of domain errors."""

from __future__ import annotations

import json

import pytest
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dockyard.auth.errors import AuthenticationFailed, Throttled
from dockyard.errors import Conflict, Contention, DomainError, Forbidden, Invalid, NotFound
from dockyard.http.problems import (
    BASE,
    PROBLEMS,
    domain_problem,
    http_problem,
    problem,
    storage_problem,
    unavailable_problem,
)
from dockyard.volumes import InsufficientStorage


def body(response: Response) -> dict[str, object]:
    document: dict[str, object] = json.loads(bytes(response.body))
    return document


@pytest.mark.parametrize("error", [AuthenticationFailed, Forbidden, NotFound, Conflict, Contention, Invalid])
def test_a_domain_error_is_answered_as_its_row_says(error: type[DomainError]) -> None:
    status, slug, title = PROBLEMS[error]
    response = domain_problem(error("what went wrong"))
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    expected = {"type": BASE + slug, "title": title, "status": status, "detail": "what went wrong"}
    assert body(response) == expected


def test_a_refused_login_carries_the_challenge_and_a_throttled_one_when_to_retry() -> None:
    assert domain_problem(AuthenticationFailed("no")).headers["www-authenticate"] == 'Basic realm="dockyard"'
    throttled = domain_problem(Throttled(41.5))
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "42")


def test_a_domain_error_the_table_does_not_name_is_a_bad_request() -> None:
    class Unlisted(NotFound):  # the table names exact classes
        pass

    response = domain_problem(Unlisted("odd"))
    assert (response.status_code, body(response)["type"]) == (400, BASE + "bad-request")


def test_a_full_volume_is_507_and_named_by_its_role() -> None:
    response = storage_problem(InsufficientStorage("blob storage"))
    assert response.status_code == 507
    assert body(response)["volume"] == "blob storage"


def test_a_storage_outage_is_503_without_its_cause() -> None:
    response = unavailable_problem()
    assert response.status_code == 503
    assert body(response)["type"] == BASE + "storage-unavailable"
    assert "try again" in str(body(response)["detail"])


def test_framework_errors_and_extra_members() -> None:
    missing = http_problem(HTTPException(405, "Method Not Allowed", headers={"Allow": "GET"}))
    assert (missing.status_code, missing.headers["allow"]) == (405, "GET")
    assert body(missing)["type"] == BASE + "method-not-allowed"
    assert body(problem(416, "offset-mismatch", "Offset", "resume", offset=7))["offset"] == 7
