"""The /v2 edge's one translation: each refusal of the pure OCI layer, of the registry's
services and of its door gets its spec code, message, detail and headers."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

from dockyard.auth import errors as auth_errors
from dockyard.auth.base import CATALOG, Access
from dockyard.auth.errors import AuthenticationFailed, Challenge, InsufficientScope, Throttled
from dockyard.errors import Conflict, Contention, DomainError, Forbidden, Invalid, NotFound
from dockyard.oci.errors import (
    InvalidDigest,
    InvalidManifest,
    InvalidMediaType,
    InvalidName,
    InvalidTag,
    InvalidValue,
)
from dockyard.registry import errors as registry_errors
from dockyard.registry.errors import (
    BlobBeingCollected,
    BlobUnknown,
    BlobUploadUnknown,
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    PushRefused,
    QuotaExceeded,
    RegistryRefusal,
    SizeMismatch,
    UploadRangeInvalid,
)
from dockyard.registry.http.errors import (
    OCI_CODES,
    TRANSLATED,
    ErrorCode,
    RegistryError,
    is_operational,
    render,
    translate,
    translate_value,
)
from dockyard.registry.pullthrough import UpstreamRateLimited, UpstreamUnavailable
from dockyard.storage.base import StorageUnavailable
from dockyard.volumes import BLOB_STORAGE, InsufficientStorage

UPLOAD = "0b7e4ad1-1f5c-4d3e-9a43-3c1c6d1f2a10"
PULL_PUSH = Access.repository("team/app", "pull", "push")
BEARER = Challenge("Bearer", "https://dockyard.test/auth/token", "dockyard.test", (PULL_PUSH,))
BEARER_ACCESS_DETAIL = [{"Type": "repository", "Name": "team/app", "Action": "pull,push"}]


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidDigest("bad digest"), "DIGEST_INVALID", 400),
        (InvalidName("bad name"), "NAME_INVALID", 400),
        (InvalidTag("bad tag"), "TAG_INVALID", 400),
        (InvalidManifest("bad manifest"), "MANIFEST_INVALID", 400),
        (InvalidMediaType("bad media type"), "MANIFEST_INVALID", 400),
    ],
)
def test_each_refusal_has_its_spec_code_and_keeps_its_message(
    error: InvalidValue, code: str, status: int
) -> None:
    translated = translate_value(error)
    assert translated.code.wire_code == code
    assert translated.message == error.message
    got_status, body, headers = render(translated)
    assert got_status == status
    assert json.loads(body) == {"errors": [{"code": code, "message": error.message, "detail": None}]}
    assert headers["Content-Type"] == "application/json"


def test_every_kind_of_refusal_is_in_the_table() -> None:
    kinds = {kind for kind in InvalidValue.__subclasses__() if kind.__module__ == InvalidValue.__module__}
    assert set(OCI_CODES) == kinds


def test_a_kind_missing_from_the_table_is_answered_as_a_bug(caplog: pytest.LogCaptureFixture) -> None:
    class Unmapped(InvalidValue):
        pass

    assert translate_value(Unmapped("x")).code is ErrorCode.UNKNOWN
    assert "Unmapped" in caplog.text


def _classes(module: Any, base: type[Exception]) -> set[type[Exception]]:
    return {
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, base) and value.__module__ == module.__name__
    }


def test_every_refusal_of_the_registry_has_its_own_row() -> None:
    refusals = _classes(registry_errors, RegistryRefusal) - {RegistryRefusal}
    assert refusals, "the registry's refusals were not found"
    assert refusals <= set(TRANSLATED)


def test_every_refusal_of_the_door_has_its_own_row() -> None:
    assert _classes(auth_errors, DomainError) <= set(TRANSLATED)


def test_the_registry_refusals_are_cases_of_the_general_errors() -> None:
    """A caller that treats "not found" (or "invalid") alike catches the registry's too."""
    for kind, general in [
        (NameUnknown, NotFound),
        (BlobUnknown, NotFound),
        (BlobUploadUnknown, NotFound),
        (ManifestUnknown, NotFound),
        (ManifestBlobUnknown, Conflict),
        (UploadRangeInvalid, Conflict),
        (SizeMismatch, Invalid),
        (DigestMismatch, Invalid),
        (ManifestTooLarge, Invalid),
        (PushRefused, Forbidden),
        (InsufficientScope, Forbidden),
    ]:
        assert issubclass(kind, general), kind


# error, code on the wire, status, detail, headers (beyond Content-Type)
ANSWERS: list[tuple[Exception, str, int, Any, dict[str, str]]] = [
    (NameUnknown("no repo"), "NAME_UNKNOWN", 404, None, {}),
    (BlobUnknown("no blob"), "BLOB_UNKNOWN", 404, None, {}),
    (BlobBeingCollected("retry"), "UNAVAILABLE", 503, None, {}),
    (BlobUploadUnknown("no upload"), "BLOB_UPLOAD_UNKNOWN", 404, None, {}),
    (
        UploadRangeInvalid("resume", "team/app", UPLOAD, 10),
        "RANGE_INVALID",
        416,
        None,
        {
            "Location": f"/v2/team/app/blobs/uploads/{UPLOAD}",
            "Range": "0-9",
            "Docker-Upload-UUID": UPLOAD,
        },
    ),
    (SizeMismatch("short"), "SIZE_INVALID", 400, None, {}),
    (DigestMismatch("other digest"), "DIGEST_INVALID", 400, None, {}),
    (ManifestUnknown("no manifest"), "MANIFEST_UNKNOWN", 404, None, {}),
    (ManifestTooLarge("too large"), "MANIFEST_INVALID", 413, None, {}),
    (
        ManifestBlobUnknown("push the blobs first", "sha256:" + "a" * 64),
        "MANIFEST_BLOB_UNKNOWN",
        404,
        {"digest": "sha256:" + "a" * 64},
        {},
    ),
    (
        PushRefused("external version", "team/app", "v1"),
        "DENIED",
        403,
        {"repository": "team/app", "tag": "v1"},
        {},
    ),
    (
        QuotaExceeded("lab", 900, 300, 1000),
        "DENIED",
        403,
        {"workspace": "lab", "used_bytes": 900, "adding_bytes": 300, "limit_bytes": 1000},
        {},
    ),
    (
        AuthenticationFailed("authentication required", BEARER),
        "UNAUTHORIZED",
        401,
        BEARER_ACCESS_DETAIL,
        {
            "WWW-Authenticate": 'Bearer realm="https://dockyard.test/auth/token",service="dockyard.test",'
            'scope="repository:team/app:pull,push"'
        },
    ),
    (
        AuthenticationFailed("wrong username or password", Challenge("Basic", "dockyard")),
        "UNAUTHORIZED",
        401,
        None,
        {"WWW-Authenticate": 'Basic realm="dockyard"'},
    ),
    (
        InsufficientScope(
            "fetch a new token",
            Challenge("Bearer", "http://localhost/auth/token", "svc", (PULL_PUSH,), "insufficient_scope"),
        ),
        "DENIED",
        403,
        BEARER_ACCESS_DETAIL,
        {
            "WWW-Authenticate": 'Bearer realm="http://localhost/auth/token",service="svc",'
            'scope="repository:team/app:pull,push",error="insufficient_scope"'
        },
    ),
    (Throttled(4.5), "TOOMANYREQUESTS", 429, None, {"Retry-After": "5"}),
    (InsufficientStorage(BLOB_STORAGE), "UNAVAILABLE", 507, None, {}),
    (StorageUnavailable("S3 refused the request: SlowDown"), "UNAVAILABLE", 503, None, {}),
    (Contention("a concurrent change got in the way; try again"), "UNAVAILABLE", 503, None, {}),
    (
        UpstreamRateLimited("docker.io is rate limiting", 29.5),
        "TOOMANYREQUESTS",
        429,
        None,
        {"Retry-After": "30"},
    ),
    (UpstreamUnavailable("still being fetched; retry"), "UNAVAILABLE", 503, None, {}),
]


@pytest.mark.parametrize(
    ("error", "code", "status", "detail", "headers"), ANSWERS, ids=[type(a[0]).__name__ for a in ANSWERS]
)
def test_each_domain_error_has_its_answer(
    error: Exception, code: str, status: int, detail: Any, headers: dict[str, str]
) -> None:
    translated = translate(error)
    assert translated is not None
    got_status, body, got_headers = render(translated)
    assert got_status == status
    assert json.loads(body) == {"errors": [{"code": code, "message": str(error), "detail": detail}]}
    assert got_headers == {"Content-Type": "application/json", **headers}


def test_the_answers_cover_the_whole_table() -> None:
    assert {type(answer[0]) for answer in ANSWERS} == set(TRANSLATED)


@pytest.mark.parametrize(
    ("challenge", "header"),
    [
        (Challenge("Basic", "dockyard"), 'Basic realm="dockyard"'),
        (Challenge("Bearer", "https://r/auth/token", "s"), 'Bearer realm="https://r/auth/token",service="s"'),
        (
            Challenge("Bearer", "https://r/auth/token", "s", (CATALOG,), "invalid_token"),
            'Bearer realm="https://r/auth/token",service="s",scope="registry:catalog:*",error="invalid_token"',
        ),
        (
            Challenge("Bearer", "r", "s", (PULL_PUSH, Access.repository("team/base", "pull"))),
            'Bearer realm="r",service="s",scope="repository:team/app:pull,push repository:team/base:pull"',
        ),
    ],
)
def test_the_challenge_becomes_the_www_authenticate_header(challenge: Challenge, header: str) -> None:
    translated = translate(AuthenticationFailed("authentication required", challenge))
    assert translated is not None
    assert translated.headers == {"WWW-Authenticate": header}


def test_an_authentication_failure_without_a_challenge_has_no_header() -> None:
    translated = translate(AuthenticationFailed("sign in first"))
    assert translated is not None
    assert (translated.code, translated.detail, translated.headers) == (ErrorCode.UNAUTHORIZED, None, {})


def test_the_edges_own_error_passes_as_it_is() -> None:
    error = RegistryError(ErrorCode.PAGINATION_NUMBER_INVALID, "n must be a number", headers={"X": "y"})
    assert translate(error) is error


def test_a_refused_value_is_translated_by_its_table() -> None:
    translated = translate(InvalidTag("bad tag"))
    assert translated is not None
    assert (translated.code, translated.message) == (ErrorCode.TAG_INVALID, "bad tag")


@pytest.mark.parametrize(
    "error",
    [NotFound("general"), Conflict("general"), RuntimeError("a bug"), RegistryRefusal("no row of its own")],
)
def test_anything_else_has_no_answer_and_is_a_bug(error: Exception) -> None:
    assert translate(error) is None


def test_only_a_full_volume_and_a_storage_outage_are_for_the_operator_too() -> None:
    assert is_operational(InsufficientStorage(BLOB_STORAGE))
    assert is_operational(StorageUnavailable("S3 down"))
    operational = (InsufficientStorage, StorageUnavailable)
    assert not any(is_operational(answer[0]) for answer in ANSWERS if not isinstance(answer[0], operational))
    assert not is_operational(RuntimeError("a bug"))
