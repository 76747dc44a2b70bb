"""Pull-through: a hook that layers above the registry may hand in, consulted on manifest and
blob GET/HEAD (like :mod:`.admission` for pushes).

The registry sits below the upstream package and never imports it; :mod:`dockyard.app` wires
the cache service in (``RegistryContext.pull_through``). The hook decides whether a repository
belongs to a cache workspace; for any other repository it answers ``None`` and the registry
serves what it has, exactly as without a hook.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from dockyard.errors import DomainError
from dockyard.oci.digest import Digest


@dataclass(frozen=True)
class Freshness:
    """How a cached manifest is served: ``stale`` is the upstream's reason when it could not be
    revalidated (unreachable, rate limited): the stored copy is served, and the answer says so."""

    source: str  # "hit" (stored and fresh), "miss" (fetched now), "stale"
    stale: str | None = None


@dataclass(frozen=True)
class Streamed:
    """A blob being fetched from the upstream: its bytes as they arrive (stored in the same pass,
    verified at the end: a mismatch ends the stream with an error and nothing is linked)."""

    size: int
    chunks: AsyncGenerator[bytes]  # consume it to the end (or close it): it holds the fetch's lock


class UpstreamUnavailable(DomainError):
    """Nothing cached, and the upstream could not give it: the message names the upstream's
    reason. ``retry_after`` (seconds) when the upstream rate-limits."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamRateLimited(UpstreamUnavailable):
    """The upstream answered 429 and nothing is cached: the client is told to come back later."""


class PullThrough(Protocol):
    async def manifest(self, repository: str, reference: str) -> Freshness | None:
        """Make sure ``repository`` holds the manifest ``reference`` names, fresh enough (a tag
        older than the cache's revalidation time is asked again upstream; a digest never).
        ``None``: not a cache repository. Raises :class:`UpstreamUnavailable` or the registry's
        ``ManifestUnknown`` when nothing is stored and the upstream cannot give it."""
        ...

    async def blob(self, repository: str, digest: Digest) -> Streamed | None:
        """A blob of a cache repository that is not linked there yet: ``None`` when not a cache
        repository or once the blob is stored and linked (serve it locally), else the bytes
        streaming from the upstream while they are stored."""
        ...

    async def blob_size(self, repository: str, digest: Digest) -> int | None:
        """A HEAD of a blob of a cache repository that is not linked there yet: its size as the
        upstream answers a HEAD, nothing downloaded; ``None`` when not a cache repository or once
        linked from what the cache stores (serve it locally). Raises as :meth:`blob` does."""
        ...

    async def refuse_write(self, repository: str) -> str | None:
        """Why a client may not push to (or delete a tag of) ``repository``, or ``None``. A cache
        workspace holds only what its upstreams hold: a push there would be served as the
        upstream's content (poisoning), so the registry refuses it (``DENIED``)."""
        ...
