"""Errors as RFC 9457 problem documents (``application/problem+json``), from one table.

Shared by the doors that answer with problem documents (the REST API, the web UI): the
table from domain errors to (status, type, title) and the rendering of a document live
here; installing the handlers on a FastAPI app is :mod:`dockyard.api.problems`. A domain
error the table does not name (its exact class) is a 400.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from dockyard.auth.errors import AuthenticationFailed, InsufficientScope, Throttled
from dockyard.errors import (
    Conflict,
    Contention,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PrivateUpstream,
    StillHolds,
    UpstreamError,
)
from dockyard.oci.errors import InvalidDigest, InvalidManifest, InvalidMediaType, InvalidName, InvalidTag
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
    SizeMismatch,
    UploadRangeInvalid,
)
from dockyard.volumes import InsufficientStorage

MEDIA_TYPE = "application/problem+json"
BASE = "https://dockyard.dev/problems/"

# error class -> (status, type slug, title); the class itself, not a parent (a subclass without
# its own row is answered 400).
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    AuthenticationFailed: (401, "unauthenticated", "Authentication required"),
    Throttled: (429, "throttled", "Too many failed logins"),
    Forbidden: (403, "forbidden", "Not allowed"),
    InsufficientScope: (403, "forbidden", "Not allowed"),
    NotFound: (404, "not-found", "Not found"),
    Conflict: (409, "conflict", "Conflict"),
    StillHolds: (409, "still-holds", "Still holds content"),
    # The database aborted the change for a concurrent one (a deadlock): nothing was written.
    Contention: (409, "try-again", "Concurrent change, try again"),
    # Another registry failed; the document's ``reason`` says how (see dockyard.upstream.results).
    # 424 Failed Dependency, not 502: the request was fine and this server works; what it
    # depended on did not (a 5xx would tell clients and monitors that Dockyard is failing).
    UpstreamError: (424, "upstream", "The upstream registry could not be used"),
    PrivateUpstream: (409, "private-upstream", "The upstream image needs credentials: keep it private"),
    Invalid: (422, "invalid", "Invalid request"),
    # The registry's refusals (an archive's image pushed into it), named after the spec's codes.
    NameUnknown: (404, "name-unknown", "repository name not known to registry"),
    BlobUnknown: (404, "blob-unknown", "blob unknown to registry"),
    BlobBeingCollected: (503, "unavailable", "service unavailable"),
    BlobUploadUnknown: (404, "blob-upload-unknown", "blob upload unknown to registry"),
    UploadRangeInvalid: (416, "range-invalid", "invalid content range"),
    SizeMismatch: (400, "size-invalid", "provided length did not match content length"),
    DigestMismatch: (400, "digest-invalid", "provided digest did not match uploaded content"),
    ManifestUnknown: (404, "manifest-unknown", "manifest unknown to registry"),
    ManifestTooLarge: (413, "manifest-too-large", "manifest too large"),
    ManifestBlobUnknown: (
        404,
        "manifest-blob-unknown",
        "manifest references a manifest or blob unknown to registry",
    ),
    PushRefused: (403, "denied", "requested access to the resource is denied"),
    # The workspace's quota has no room (an archive's image): 413, as archive uploads always
    # answered, with the numbers as members of the document.
    QuotaExceeded: (413, "quota-exceeded", "Quota exceeded"),
    # Values the OCI grammar refuses (a manifest of an archive, a name or tag asked for).
    InvalidDigest: (400, "digest-invalid", "provided digest did not match uploaded content"),
    InvalidName: (400, "name-invalid", "invalid repository name"),
    InvalidTag: (400, "tag-invalid", "manifest tag did not match URI"),
    InvalidManifest: (400, "manifest-invalid", "manifest invalid"),
    InvalidMediaType: (400, "manifest-invalid", "manifest invalid"),
}
UNLISTED = (400, "bad-request", "Bad request")


def problem(
    status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """A problem document: ``type`` is ``BASE + slug``; ``extra`` members join the body."""
    body = {"type": BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def domain_problem(exc: DomainError, *, challenge: bool = True) -> Response:
    """``exc`` as its row of :data:`PROBLEMS` says, with the headers its status needs
    (``Retry-After`` on a 429, the Basic challenge on a 401 unless ``challenge`` is false)."""
    status, slug, title = PROBLEMS.get(type(exc), UNLISTED)
    headers: dict[str, str] = {}
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(int(exc.retry_after) + 1)
    if isinstance(exc, AuthenticationFailed) and challenge:
        headers["WWW-Authenticate"] = 'Basic realm="dockyard"'
    extra: dict[str, Any] = {"holds": exc.holdings} if isinstance(exc, StillHolds) else {}
    if isinstance(exc, UpstreamError):
        extra = {"reason": exc.reason, **exc.members}
        if exc.reason == "rate_limited" and isinstance(exc.members.get("retry_after"), (int, float)):
            headers["Retry-After"] = str(int(float(str(exc.members["retry_after"]))) + 1)
    if isinstance(exc, PrivateUpstream):
        extra = {"reason": "private_upstream"}
    if isinstance(exc, QuotaExceeded):
        extra = {"workspace": exc.workspace, **exc.numbers()}
    return problem(status, slug, title, str(exc), headers, **extra)


def storage_problem(exc: InsufficientStorage) -> Response:
    """507, naming the full volume by its role (never its path)."""
    return problem(507, "insufficient-storage", "Insufficient storage", str(exc), volume=exc.volume)


def unavailable_problem() -> Response:
    """503: the blob storage service refused or did not answer (the cause is logged, not told)."""
    return problem(
        503, "storage-unavailable", "Storage unavailable", "the blob storage did not answer; try again"
    )


def http_problem(exc: HTTPException) -> Response:
    """An HTTP error raised by the framework (no such route, method not allowed, ...)."""
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), dict(exc.headers or {}))
