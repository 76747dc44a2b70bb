"""The pure layer's refusals, and the registry's error codes.

:class:`InvalidValue` and its kinds are what this package raises: a value (digest, name, tag,
media type, manifest) that the OCI grammar refuses, with a message that says why. They carry
no HTTP status; the layer that knows the request decides how to answer (the /v2 edge maps each
kind to a spec code in :mod:`dockyard.registry.http.errors`).

:class:`ErrorCode` is the one table of spec codes, each member carrying its HTTP status; the
OCI Distribution spec (and CNCF Distribution's ``errcode`` register) name these codes. The HTTP
edge turns a :class:`RegistryError` into the ``{"errors": [...]}`` envelope in exactly one place.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class InvalidValue(ValueError):
    """A value the OCI grammar refuses; ``message`` says what is wrong and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidDigest(InvalidValue):
    """Not ``algorithm:hex`` of a supported algorithm."""


class InvalidName(InvalidValue):
    """Not a repository name of the distribution spec (or of this registry's limits)."""


class InvalidTag(InvalidValue):
    """Not a tag of the distribution spec."""


class InvalidMediaType(InvalidValue):
    """Not a media type name of RFC 6838 (``type/subtype``, restricted characters)."""


class InvalidManifest(InvalidValue):
    """Bytes that are not a manifest this registry accepts."""


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
