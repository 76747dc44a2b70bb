"""The one place a registry error becomes a response."""

from __future__ import annotations

import json

from dockyard.oci.errors import ErrorCode, RegistryError
from dockyard.volumes import InsufficientStorage

# Domain errors of the layers below, as spec errors (one row each).
TRANSLATED: dict[type[Exception], ErrorCode] = {InsufficientStorage: ErrorCode.INSUFFICIENT_STORAGE}


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
