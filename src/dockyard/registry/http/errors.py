"""The one place a registry error becomes a response."""

from __future__ import annotations

import json

from dockyard.oci.errors import RegistryError


def render(error: RegistryError) -> tuple[int, bytes, dict[str, str]]:
    """Status, ``{"errors": [...]}`` body and headers for ``error``."""
    body = json.dumps(
        {"errors": [{"code": error.code.wire_code, "message": error.message, "detail": error.detail}]},
        separators=(",", ":"),
    ).encode()
    headers = {"Content-Type": "application/json", **error.headers}
    return error.code.status, body, headers
