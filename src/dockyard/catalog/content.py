"""Images stored in this registry, as the catalog reads them (:class:`.inspect.ContentSource`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dockyard.oci.digest import Digest
from dockyard.registry.blobs import BlobService
from dockyard.registry.manifests import ManifestService


class RegistryContent:
    """Manifests and configs of a repository, and any stored blob's bytes (layers to measure)."""

    def __init__(self, manifests: ManifestService, blobs: BlobService) -> None:
        self.manifests = manifests
        self.blobs = blobs

    async def manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        stored = await self.manifests.get(repository, reference)
        return stored.digest, stored.content

    async def config(self, repository: str, digest: str, limit: int) -> bytes:
        return await self.blobs.read(repository, Digest.parse(digest), limit)

    def stream(self, digest: str) -> AsyncIterator[bytes]:
        return self.blobs.stream(Digest.parse(digest))
