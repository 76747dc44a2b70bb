"""Errors as RFC 9457 problem documents (``application/problem+json``), from one table."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from dockyard.api.deps import anonymous_may_call, require_signed_in
from dockyard.auth.errors import AuthenticationFailed, InsufficientScope, Throttled
from dockyard.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
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
    SizeMismatch,
    UploadRangeInvalid,
)
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.api")

# error class -> (status, type slug, title); the class itself, not a parent (a subclass without
# its own row is answered 400).
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    AuthenticationFailed: (401, "unauthenticated", "Authentication required"),
    Throttled: (429, "throttled", "Too many failed logins"),
    Forbidden: (403, "forbidden", "Not allowed"),
    InsufficientScope: (403, "forbidden", "Not allowed"),
    NotFound: (404, "not-found", "Not found"),
    Conflict: (409, "conflict", "Conflict"),
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
    # Values the OCI grammar refuses (a manifest of an archive, a name or tag asked for).
    InvalidDigest: (400, "digest-invalid", "provided digest did not match uploaded content"),
    InvalidName: (400, "name-invalid", "invalid repository name"),
    InvalidTag: (400, "tag-invalid", "manifest tag did not match URI"),
    InvalidManifest: (400, "manifest-invalid", "manifest invalid"),
    InvalidMediaType: (400, "manifest-invalid", "manifest invalid"),
}
BASE = "https://dockyard.dev/problems/"


def problem(
    status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {"type": BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


async def _access_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status, slug, title = PROBLEMS.get(type(exc), (400, "bad-request", "Bad request"))
    headers: dict[str, str] = {}
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(int(exc.retry_after) + 1)
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Basic realm="dockyard"'
    return problem(status, slug, title, str(exc), headers)


async def _insufficient_storage(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InsufficientStorage)
    log.warning("%s %s: %s (%s)", request.method, request.url.path, exc, exc.__cause__)
    return problem(507, "insufficient-storage", "Insufficient storage", str(exc), volume=exc.volume)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # FastAPI checks parameters and body before the endpoint runs, and parses a JSON body
    # even before the caller is authenticated. A caller who must sign in learns that first
    # (401 and the challenge), as with a well-formed body; a signed-in one gets the 422.
    if not anonymous_may_call(request):
        try:
            await require_signed_in(request)
        except DomainError as denied:
            return await _access_error(request, denied)
    errors = [
        {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return problem(422, "invalid", "Invalid request", detail, errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), dict(exc.headers or {}))


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _access_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(InsufficientStorage, _insufficient_storage)
