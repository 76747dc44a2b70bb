"""The pure layer's refusals.

:class:`InvalidValue` and its kinds are what this package raises: a value (digest, name, tag,
media type, manifest) that the OCI grammar refuses, with a message that says why. They carry
no HTTP status and no spec code; the layer that knows the request decides how to answer (the
/v2 edge maps each kind to a spec code in :mod:`dockyard.registry.http.errors`, the API to a
problem document in :mod:`dockyard.api.problems`).
"""

from __future__ import annotations


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
