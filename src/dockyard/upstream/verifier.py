"""What the catalog's verifier asks (:class:`Resolver`), and its implementation over the upstream client: the
Distribution API of an external image's own registry, through the outbound policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dockyard.oci.reference import parse_reference
from dockyard.outbound import OutboundPolicy, loopback_registry
from dockyard.upstream import client as upstream


@dataclass(frozen=True)
class Resolved:
    digest: str
    media_type: str
    platforms: list[str]
    compressed_size: int | None


@dataclass(frozen=True)
class Unresolved:
    kind: str  # not_found, unauthorized, rate_limited, unreachable, invalid, refused
    message: str


class Resolver(Protocol):
    async def __call__(self, reference: str, credentials: tuple[str, str] | None) -> Resolved | Unresolved:
        """Resolve a canonical reference (``registry/repository:tag[@digest]``) upstream,
        anonymously or with (username, secret)."""
        ...


class UpstreamResolver:
    """The catalog's verifier: the Distribution API of the image's own registry, where the
    outbound policy allows. Loopback registries, and those listed in ``upstream_insecure``, are
    spoken to over plain HTTP."""

    def __init__(self, insecure: list[str], outbound: OutboundPolicy) -> None:
        self.insecure = set(insecure)
        self.outbound = outbound

    async def __call__(self, reference: str, credentials: tuple[str, str] | None) -> Resolved | Unresolved:
        ref = parse_reference(reference)
        host = ref.api_host
        plain = host in self.insecure or loopback_registry(host)
        result = await upstream.resolve(
            host,
            ref.repository,
            str(ref.digest or ref.tag),
            outbound=self.outbound,
            credentials=None if credentials is None else upstream.Credentials(*credentials),
            scheme="http" if plain else "https",
        )
        if isinstance(result, upstream.Resolved):
            # What one machine downloads: the amd64 image's size (else the first platform's).
            return Resolved(result.digest, result.media_type, result.platforms, result.compressed_size)
        return Unresolved(result.kind, result.message)
