"""Content digests (``algorithm:hex``) as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from dockyard.oci.errors import InvalidDigest

# Registered algorithms and the exact hex length each one has.
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_LOWER_HEX_RE = re.compile(r"^[a-f0-9]+$")


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


class Digest(str):
    """A validated digest string. ``Digest.parse`` is the only way in from untrusted input."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: str) -> Digest:
        match = _DIGEST_RE.fullmatch(value)
        if match is None:
            raise InvalidDigest(f"invalid digest {value[:150]!r}: use sha256:<64 lowercase hex characters>")
        algorithm, encoded = match.groups()
        expected = _HEX_LENGTH.get(algorithm)
        if expected is None:
            raise InvalidDigest(
                f"unsupported digest algorithm {algorithm!r}; use one of {sorted(_HEX_LENGTH)}"
            )
        if len(encoded) != expected or not _LOWER_HEX_RE.fullmatch(encoded):
            raise InvalidDigest(f"invalid {algorithm} digest: expected {expected} lowercase hex characters")
        return cls(value)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.split(":", 1)[1]


def new_hasher(algorithm: str = "sha256") -> Hasher:
    if algorithm not in _HEX_LENGTH:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
    h: Hasher = hashlib.new(algorithm)
    return h
