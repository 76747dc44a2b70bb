"""The one place a registry error becomes a response, and the one table that gives the pure
layer's refusals (:class:`~dockyard.oci.errors.InvalidValue`) their spec code."""

from __future__ import annotations

import json
import logging

from dockyard.oci.errors import (
    ErrorCode,
    InvalidDigest,
    InvalidManifest,
    InvalidMediaType,
    InvalidName,
    InvalidTag,
    InvalidValue,
    RegistryError,
)
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.registry")

# Where an endpoint answers otherwise (GET of a tag that cannot exist is MANIFEST_UNKNOWN, as the
# spec's endpoint table allows only 404 there), the service or handler raises that code itself.
OCI_CODES: dict[type[InvalidValue], ErrorCode] = {
    InvalidDigest: ErrorCode.DIGEST_INVALID,
    InvalidName: ErrorCode.NAME_INVALID,
    InvalidTag: ErrorCode.TAG_INVALID,
    InvalidManifest: ErrorCode.MANIFEST_INVALID,
    # A media type is only refused inside a manifest (a referrers filter that is no media type
    # simply matches nothing), so a bad one is a bad manifest.
    InvalidMediaType: ErrorCode.MANIFEST_INVALID,
}


# Domain errors of the layers below, as spec errors (one row each).
TRANSLATED: dict[type[Exception], ErrorCode] = {InsufficientStorage: ErrorCode.INSUFFICIENT_STORAGE}


def translate_value(error: InvalidValue) -> RegistryError:
    """The spec error for a value the OCI grammar refused."""
    for kind, code in OCI_CODES.items():
        if isinstance(error, kind):
            return RegistryError(code, error.message)
    # A kind missing from the table is a bug here, not the client's: answered as one.
    log.error("no spec code for %s: %s", type(error).__name__, error.message)
    return RegistryError(ErrorCode.UNKNOWN)


def translate(exc: Exception) -> RegistryError | None:
    """The spec error for a lower layer's domain error; None for anything else (a bug)."""
    code = TRANSLATED.get(type(exc))
    return None if code is None else RegistryError(code, str(exc))


def render(error: RegistryError) -> tuple[int, bytes, dict[str, str]]:
    """Status, ``{"errors": [...]}`` body and headers for ``error``."""
    body = json.dumps(
        {"errors": [{"code": error.code.wire_code, "message": error.message, "detail": error.detail}]},
        separators=(",", ":"),
    ).encode()
    headers = {"Content-Type": "application/json", **error.headers}
    return error.code.status, body, headers
