"""Images stored in this registry, as the catalog reads them (:class:`.inspect.ContentSource`).

In a pull-through cache workspace a manifest is stored before its blobs (they arrive as clients
pull them), so an image config that is not stored yet is fetched through the cache (stored in
the same pass, verified, then linked) instead of failing the version's inspection. Layers are
never fetched for the catalog: the package index reads a cached image's layers once a client
has pulled them through the cache (until then the version has no scan, and the inspections'
sweep tries again), so the cache downloads only what clients ask for (one platform of an
index, not all of them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dockyard.oci.digest import Digest
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import BlobUnknown
from dockyard.registry.manifests import ManifestService
from dockyard.registry.pullthrough import PullThrough


class LayerNotPulled(BlobUnknown):
    """A cache repository's layer that no client has pulled through the cache yet."""


class RegistryContent:
    """Manifests and configs of a repository, and any stored blob's bytes (layers to measure)."""

    def __init__(self, manifests: ManifestService, blobs: BlobService) -> None:
        self.manifests = manifests
        self.blobs = blobs
        self.cache: PullThrough | None = None

    def fill_with(self, cache: PullThrough) -> None:
        """Configs missing from a cache repository are fetched from its upstream through ``cache``."""
        self.cache = cache

    async def manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        stored = await self.manifests.get(repository, reference)
        return stored.digest, stored.content

    async def config(self, repository: str, digest: str, limit: int) -> bytes:
        wanted = Digest.parse(digest)
        try:
            return await self.blobs.read(repository, wanted, limit)
        except BlobUnknown:
            if self.cache is None:
                raise
            streamed = await self.cache.blob(repository, wanted)
        if streamed is None:  # not a cache repository, or stored by a client's pull meanwhile
            return await self.blobs.read(repository, wanted, limit)
        data = bytearray()
        async with contextlib.aclosing(streamed.chunks) as chunks:  # closed: the fetch lets go
            if streamed.size > limit:
                raise BlobUnknown(f"blob {digest} is {streamed.size} bytes; expected at most {limit}")
            async for chunk in chunks:  # to the end: verified and linked once the last byte is in
                data += chunk
        return bytes(data)

    async def stored_layer(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        """A layer's stored bytes. In a cache repository a layer no client has pulled yet is
        :class:`LayerNotPulled`: it is never fetched from the upstream for the catalog."""
        wanted = Digest.parse(digest)
        # A cache repository is one whose writes the cache refuses (its content is the upstream's).
        if self.cache is not None and await self.cache.refuse_write(repository) is not None:
            try:
                await self.blobs.size_in(repository, wanted)
            except BlobUnknown:
                raise LayerNotPulled(f"layer {digest} of {repository} was not pulled yet") from None
        async for chunk in self.blobs.stream(wanted):
            yield chunk

    def stream(self, digest: str) -> AsyncIterator[bytes]:
        return self.blobs.stream(Digest.parse(digest))
