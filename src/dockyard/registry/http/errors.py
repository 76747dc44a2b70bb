"""The /v2 edge's errors: the spec's codes, and the one place every refusal becomes one.

:class:`ErrorCode` is the one table of spec codes, each member carrying its HTTP status; the
OCI Distribution spec (and CNCF Distribution's ``errcode`` register) name these codes. A
:class:`RegistryError` is a refusal with its code, as the client is told it; only this edge
raises it (what its handlers refuse on the request's face: a malformed header or parameter, an
unknown route), every other layer raises its own errors, and :func:`translate` gives them their
codes from two tables:

- :data:`OCI_CODES`: the pure layer's refusals of a value (:class:`~dockyard.oci.errors.InvalidValue`);
- :data:`TRANSLATED`: the domain errors of the registry (:mod:`dockyard.registry.errors`), of
  its door (:mod:`dockyard.auth.errors`) and of a full volume, each with the detail and the
  headers its answer needs (``WWW-Authenticate``, ``Range``, ``Retry-After``).

:func:`render` turns a :class:`RegistryError` into the ``{"errors": [...]}`` envelope.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dockyard.auth.errors import AuthenticationFailed, Challenge, InsufficientScope, Throttled
from dockyard.errors import Contention
from dockyard.oci.errors import (
    InvalidDigest,
    InvalidManifest,
    InvalidMediaType,
    InvalidName,
    InvalidTag,
    InvalidValue,
)
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
from dockyard.registry.pullthrough import UpstreamRateLimited, UpstreamUnavailable
from dockyard.registry.uploads import session_headers
from dockyard.storage.base import StorageUnavailable
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.registry")


class ErrorCode(Enum):
    # (HTTP status, default message[, code on the wire when it differs from the name])
    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (404, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    TAG_INVALID = (400, "manifest tag did not match URI")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    RANGE_INVALID = (416, "invalid content range")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    MANIFEST_TOO_LARGE = (413, "manifest too large", "MANIFEST_INVALID")
    ROUTE_UNKNOWN = (404, "no such endpoint in the registry API", "UNSUPPORTED")
    UNAVAILABLE = (503, "service unavailable")
    # A full volume: 507 (RFC 4918) says exactly that, and clients print the status line.
    # The spec has no code for it; UNAVAILABLE (CNCF Distribution's register) tells clients
    # what is true: the registry is up and the write may succeed later, so they may retry.
    # DENIED would send users after their credentials, UNKNOWN means a bug.
    INSUFFICIENT_STORAGE = (507, "insufficient storage", "UNAVAILABLE")
    UNKNOWN = (500, "unknown error")  # a bug or an outage: the details go to the log only

    @property
    def status(self) -> int:
        return int(self.value[0])

    @property
    def message(self) -> str:
        return str(self.value[1])

    @property
    def wire_code(self) -> str:
        """The code as written on the wire (an oversize manifest is MANIFEST_INVALID, with 413)."""
        return str(self.value[2]) if len(self.value) > 2 else self.name


class RegistryError(Exception):
    """An error the client is told about with a spec error code.

    ``headers`` carries response headers the error needs (e.g. ``Range`` on a 416,
    ``WWW-Authenticate`` on a 401).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{code.name}: {self.message}")


# Where an endpoint answers otherwise (GET of a tag that cannot exist is MANIFEST_UNKNOWN, as the
# spec's endpoint table allows only 404 there), the service or handler raises that error itself.
OCI_CODES: dict[type[InvalidValue], ErrorCode] = {
    InvalidDigest: ErrorCode.DIGEST_INVALID,
    InvalidName: ErrorCode.NAME_INVALID,
    InvalidTag: ErrorCode.TAG_INVALID,
    InvalidManifest: ErrorCode.MANIFEST_INVALID,
    # A media type is only refused inside a manifest (a referrers filter that is no media type
    # simply matches nothing), so a bad one is a bad manifest.
    InvalidMediaType: ErrorCode.MANIFEST_INVALID,
}


@dataclass(frozen=True)
class Answer:
    """How the edge answers one kind of domain error: its code, and what else the client needs."""

    code: ErrorCode
    detail: Callable[[Any], Any] | None = None  # the envelope's ``detail``, from the error
    headers: Callable[[Any], dict[str, str]] | None = None  # response headers, from the error
    operational: bool = False  # an operator should hear of it (the log), not only the client


def _challenge_header(challenge: Challenge | None) -> dict[str, str]:
    if challenge is None:
        return {}
    parts = [f'realm="{challenge.realm}"']
    if challenge.service is not None:
        parts.append(f'service="{challenge.service}"')
    if challenge.accesses:
        parts.append(f'scope="{challenge.scope}"')
    if challenge.error:
        parts.append(f'error="{challenge.error}"')
    return {"WWW-Authenticate": f"{challenge.scheme} " + ",".join(parts)}


def _challenged_accesses(challenge: Challenge | None) -> list[dict[str, str]] | None:
    """The accesses asked for, as CNCF Distribution's ``detail`` of UNAUTHORIZED names them."""
    if challenge is None or not challenge.accesses:
        return None
    return [
        {"Type": a.type, "Name": a.name, "Action": ",".join(sorted(a.actions))} for a in challenge.accesses
    ]


def _refusal_detail(exc: AuthenticationFailed | InsufficientScope) -> list[dict[str, str]] | None:
    return _challenged_accesses(exc.challenge)


def _refusal_headers(exc: AuthenticationFailed | InsufficientScope) -> dict[str, str]:
    return _challenge_header(exc.challenge)


def _retry_after(exc: Throttled) -> dict[str, str]:
    return {"Retry-After": str(int(exc.retry_after) + 1)}


def _upstream_retry(exc: UpstreamUnavailable) -> dict[str, str]:
    return {} if exc.retry_after is None else {"Retry-After": str(int(exc.retry_after) + 1)}


def _upload_session(exc: UploadRangeInvalid) -> dict[str, str]:
    """Where the upload is and how far it got: the client resumes from there."""
    return session_headers(exc.repository, exc.upload_id, exc.offset)


def _missing_reference(exc: ManifestBlobUnknown) -> dict[str, str]:
    return {"digest": exc.digest}


def _quota_numbers(exc: QuotaExceeded) -> dict[str, int | str]:
    return {"workspace": exc.workspace, **exc.numbers()}


def _refused_push(exc: PushRefused) -> dict[str, str | None]:
    return {"repository": exc.repository, "tag": exc.tag}


# The domain errors of the layers below, as spec errors (one row each).
TRANSLATED: dict[type[Exception], Answer] = {
    NameUnknown: Answer(ErrorCode.NAME_UNKNOWN),
    BlobUnknown: Answer(ErrorCode.BLOB_UNKNOWN),
    # GC is deleting the blob: the push may succeed on a retry, which UNAVAILABLE says.
    BlobBeingCollected: Answer(ErrorCode.UNAVAILABLE),
    BlobUploadUnknown: Answer(ErrorCode.BLOB_UPLOAD_UNKNOWN),
    UploadRangeInvalid: Answer(ErrorCode.RANGE_INVALID, headers=_upload_session),
    SizeMismatch: Answer(ErrorCode.SIZE_INVALID),
    DigestMismatch: Answer(ErrorCode.DIGEST_INVALID),
    ManifestUnknown: Answer(ErrorCode.MANIFEST_UNKNOWN),
    ManifestTooLarge: Answer(ErrorCode.MANIFEST_TOO_LARGE),
    ManifestBlobUnknown: Answer(ErrorCode.MANIFEST_BLOB_UNKNOWN, detail=_missing_reference),
    PushRefused: Answer(ErrorCode.DENIED, detail=_refused_push),
    # Over the workspace's quota: DENIED, as Harbor answers, so that docker and skopeo stop and
    # print the message (with the numbers) instead of retrying a push that cannot succeed
    # (a 5xx or UNAVAILABLE invites retries; 413 is about one request's size, not the store's).
    QuotaExceeded: Answer(ErrorCode.DENIED, detail=_quota_numbers),
    AuthenticationFailed: Answer(ErrorCode.UNAUTHORIZED, detail=_refusal_detail, headers=_refusal_headers),
    InsufficientScope: Answer(ErrorCode.DENIED, detail=_refusal_detail, headers=_refusal_headers),
    Throttled: Answer(ErrorCode.TOOMANYREQUESTS, headers=_retry_after),
    InsufficientStorage: Answer(ErrorCode.INSUFFICIENT_STORAGE, operational=True),
    # The database aborted the write for a concurrent one (a deadlock): nothing was written, and
    # the same request may succeed now, which UNAVAILABLE tells clients (they retry).
    Contention: Answer(ErrorCode.UNAVAILABLE),
    # The blob storage service refused or did not answer (S3 down or throttling): retry later.
    StorageUnavailable: Answer(ErrorCode.UNAVAILABLE, operational=True),
    # A pull-through cache with nothing stored whose upstream failed: 429 passes the upstream's
    # rate limit on (with its Retry-After); any other reason is UNAVAILABLE (503), naming it:
    # not DENIED or UNAUTHORIZED, which would send the client after its own credentials.
    UpstreamRateLimited: Answer(ErrorCode.TOOMANYREQUESTS, headers=_upstream_retry),
    UpstreamUnavailable: Answer(ErrorCode.UNAVAILABLE, headers=_upstream_retry),
}


def translate_value(error: InvalidValue) -> RegistryError:
    """The spec error for a value the OCI grammar refused."""
    for kind, code in OCI_CODES.items():
        if isinstance(error, kind):
            return RegistryError(code, error.message)
    # A kind missing from the table is a bug here, not the client's: answered as one.
    log.error("no spec code for %s: %s", type(error).__name__, error.message)
    return RegistryError(ErrorCode.UNKNOWN)


def answer_for(exc: Exception) -> Answer | None:
    """The row of :data:`TRANSLATED` for ``exc`` (or for the nearest class it derives from)."""
    for kind in type(exc).__mro__:
        answer = TRANSLATED.get(kind)
        if answer is not None:
            return answer
    return None


def is_operational(exc: Exception) -> bool:
    """Whether an operator should hear of ``exc`` too (a full volume), not only the client."""
    answer = answer_for(exc)
    return answer is not None and answer.operational


def translate(exc: Exception) -> RegistryError | None:
    """The spec error for ``exc``: a :class:`RegistryError` as it is, a refused value by
    :data:`OCI_CODES`, a domain error by :data:`TRANSLATED`; None for anything else (a bug)."""
    if isinstance(exc, RegistryError):
        return exc
    if isinstance(exc, InvalidValue):
        return translate_value(exc)
    answer = answer_for(exc)
    if answer is None:
        return None
    return RegistryError(
        answer.code,
        str(exc),
        detail=None if answer.detail is None else answer.detail(exc),
        headers=None if answer.headers is None else answer.headers(exc),
    )


def render(error: RegistryError) -> tuple[int, bytes, dict[str, str]]:
    """Status, ``{"errors": [...]}`` body and headers for ``error``."""
    body = json.dumps(
        {"errors": [{"code": error.code.wire_code, "message": error.message, "detail": error.detail}]},
        separators=(",", ":"),
    ).encode()
    headers = {"Content-Type": "application/json", **error.headers}
    return error.code.status, body, headers
