"""What the catalog's verifier asks (:class:`Resolver`), and its implementation over the upstream client: the
Distribution API of an external image's own registry, through the outbound policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dockyard.oci.reference import parse_reference
from dockyard.outbound import OutboundPolicy
from dockyard.upstream import client as upstream
from dockyard.upstream.profiles import Profiles
from dockyard.upstream.results import UpstreamFailure


@dataclass(frozen=True)
class Resolved:
    digest: str
    media_type: str
    platforms: list[str]
    compressed_size: int | None
    private: bool = False  # anonymous access was refused: the workspace's credentials were needed


@dataclass(frozen=True)
class Unresolved:
    kind: str  # a results.FailureKind: the machine-readable reason
    message: str


class Resolver(Protocol):
    async def __call__(self, reference: str, workspace_id: int) -> Resolved | Unresolved:
        """Resolve a canonical reference (``registry/repository:tag[@digest]``) upstream, as
        the workspace reaches that registry (its registry profile, else a platform-wide one)."""
        ...


class UpstreamResolver:
    """The catalog's verifier: the Distribution API of the image's own registry, where the
    outbound policy allows, reached through :func:`dockyard.upstream.profiles.connection_for`."""

    def __init__(self, profiles: Profiles, outbound: OutboundPolicy) -> None:
        self.profiles = profiles
        self.outbound = outbound

    async def __call__(self, reference: str, workspace_id: int) -> Resolved | Unresolved:
        return await self._resolve(reference, workspace_id, anonymous=False)

    async def anonymous(self, reference: str, workspace_id: int) -> Resolved | Unresolved:
        """The same question without the profile's credentials: does the image need them?"""
        return await self._resolve(reference, workspace_id, anonymous=True)

    async def _resolve(self, reference: str, workspace_id: int, *, anonymous: bool) -> Resolved | Unresolved:
        ref = parse_reference(reference)
        try:
            reach = await self.profiles.connection_for(None, workspace_id, ref.registry)
        except UpstreamFailure as exc:
            return Unresolved(exc.failure.kind, exc.failure.message)
        result = await upstream.resolve(
            ref.registry,
            ref.repository,
            str(ref.digest or ref.tag),
            outbound=self.outbound,
            credentials=None if anonymous else reach.credentials,
            scheme=reach.scheme,
            verify=reach.verify,
        )
        if isinstance(result, upstream.Resolved):
            private = False
            if reach.credentials is not None and not anonymous:
                alone = await self._resolve(reference, workspace_id, anonymous=True)
                private = isinstance(alone, Unresolved) and alone.kind in ("unauthorized", "forbidden")
            # What one machine downloads: the amd64 image's size (else the first platform's).
            return Resolved(
                result.digest, result.media_type, result.platforms, result.compressed_size, private
            )
        return Unresolved(result.kind, result.message)
