"""What a downloaded archive holds, read from the registry: the platform image chosen from
an index, its config and its layers as stored, planned as a resumable tar.

- ``docker`` format: one image (a ``docker load`` archive names one config per image, so an
  index gives one platform: the one asked for, else linux/amd64).
- ``oci`` format: an OCI image layout. With a platform, that platform's manifest is the
  root; without one, a single-platform image is exported as it is and an index is kept
  whole (every platform, attestations included), so ``skopeo copy --all oci-archive:...``
  gives back the very index that was pushed, digest for digest.

Manifest bytes come from the database exactly as pushed; configs are read whole (they are
small and ``docker load`` needs them as the archive's JSON); layers are not read here at
all: each is a chunk source that opens the stored blob at an offset when the stream
reaches it. Every blob is checked first (linked to the repository, present in storage,
of the size its descriptor declares), so a broken image is refused before the first
byte instead of failing halfway through a download. Referrers (signatures, SBOMs) are
not part of the archive.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.archive.docker_archive import DockerImage, ExportBlob, docker_archive, oci_archive
from dockyard.archive.media import IMAGE_CONFIGS
from dockyard.archive.tarwriter import TarStream
from dockyard.catalog.inspect import platform_name
from dockyard.errors import Conflict, Invalid
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.manifest import Descriptor, ParsedManifest, parse_manifest
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import RegistryRefusal
from dockyard.registry.manifests import ManifestService, StoredManifest
from dockyard.registry.paths import blob_path
from dockyard.storage.base import PathNotFound, StorageDriver

DOCKER, OCI = "docker", "oci"
FORMATS = (DOCKER, OCI)
DEFAULT_PLATFORM = "linux/amd64"
MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 4  # indexes of indexes, at most this deep
_PLATFORM_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$")


def normalize_platform(text: str) -> str:
    """``os/arch[/variant]`` in lower case; a bare architecture means Linux (``arm64``)."""
    wanted = text.strip().lower()
    if wanted and "/" not in wanted:
        wanted = "linux/" + wanted
    if not _PLATFORM_RE.fullmatch(wanted):
        raise Invalid(f"platform {text[:80]!r} is not os/architecture[/variant], like linux/arm64")
    return wanted


def platform_matches(wanted: str, candidate: str) -> bool:
    """``linux/arm64`` matches ``linux/arm64/v8``; ``linux/arm64/v8`` also matches a
    ``linux/arm64`` without a variant (v8 is arm64's only one); otherwise exact."""
    if wanted == candidate or candidate.startswith(wanted + "/"):
        return True
    return wanted == candidate + "/v8" and candidate.endswith("/arm64")


@dataclass(frozen=True)
class Plan:
    stream: TarStream
    root: str  # digest of the archive's root: the image manifest exported, or the whole index
    platform: str | None  # the platform exported; None for a whole index (or an unknown one)


@dataclass(frozen=True)
class _Image:
    manifest: StoredManifest
    parsed: ParsedManifest
    platform: str | None


class ExportPlanner:
    """Plans archives of images stored in one repository."""

    def __init__(self, manifests: ManifestService, blobs: BlobService, storage: StorageDriver) -> None:
        self.manifests = manifests
        self.blobs = blobs
        self.storage = storage

    async def plan(
        self, repository: str, digest: str, fmt: str, platform: str | None, reference: str
    ) -> Plan:
        """The archive of ``repository@digest`` tagged ``reference`` (``host/name:version``)."""
        root = await self._manifest(repository, digest)
        parsed = parse_manifest(root.content, root.media_type)
        label = reference.partition("/")[2]  # name:version, without the registry host
        if parsed.is_index and fmt == OCI and platform is None:
            blobs: dict[str, ExportBlob] = {}
            await self._collect(repository, parsed, blobs, 1)
            return Plan(oci_archive(_as_blob(root), list(blobs.values()), [reference]), root.digest, None)
        if parsed.is_index:
            image = await self._choose(repository, parsed, platform or DEFAULT_PLATFORM, label)
        else:
            image = _Image(root, parsed, await self._config_platform(repository, parsed))
            if platform is not None and (
                image.platform is None or not platform_matches(platform, image.platform)
            ):
                raise Conflict(
                    f"{label} is a single-platform image for {image.platform or 'an unknown platform'}, "
                    f"not {platform}; download it without ?platform="
                )
        if fmt == OCI:
            blobs = {}
            await self._add_image_blobs(repository, image.parsed, blobs)
            stream = oci_archive(_as_blob(image.manifest), list(blobs.values()), [reference])
        else:
            stream = docker_archive([await self._docker_image(repository, image.parsed, reference)])
        return Plan(stream, image.manifest.digest, image.platform)

    # --- manifests and platforms ---------------------------------------------------

    async def _manifest(self, repository: str, digest: str) -> StoredManifest:
        try:
            return await self.manifests.get(repository, digest)
        except RegistryRefusal:
            raise Conflict(
                f"the manifest {digest} of {repository} is no longer stored (deleted or re-pushed meanwhile)"
            ) from None

    async def _config_platform(self, repository: str, parsed: ParsedManifest) -> str | None:
        if parsed.config is None or parsed.config.media_type not in IMAGE_CONFIGS:
            return None
        try:
            config = json.loads(await self._config(repository, parsed.config))
        except ValueError:
            return None
        if not isinstance(config, dict) or not config.get("architecture"):
            return None
        return platform_name(config)

    async def _choose(self, repository: str, index: ParsedManifest, wanted: str, label: str) -> _Image:
        """The one image of ``index`` for ``wanted``: an exact match first, else a unique
        prefix match (``linux/arm64`` for ``linux/arm64/v8``)."""
        candidates: list[_Image] = []
        for child in index.manifests:
            if child.media_type not in mt.IMAGE_MANIFESTS:
                continue
            if child.platform and child.platform.get("os") == "unknown":
                continue  # buildkit's attestation manifests
            stored = await self._manifest(repository, str(child.digest))
            parsed = parse_manifest(stored.content, stored.media_type)
            name = platform_name(child.platform) if child.platform else None
            name = name or await self._config_platform(repository, parsed)
            if name is not None and parsed.config is not None:
                candidates.append(_Image(stored, parsed, name))
        available = sorted({c.platform for c in candidates if c.platform})
        exact = [c for c in candidates if c.platform == wanted]
        matching = exact or [c for c in candidates if c.platform and platform_matches(wanted, c.platform)]
        if len(matching) == 1:
            return matching[0]
        listed = ", ".join(available) or "none"
        if not matching:
            raise Conflict(
                f"{label} has no {wanted} image; its platforms: {listed}. "
                "Choose one with ?platform= (the CLI: --platform)"
            )
        raise Conflict(f"{label} has several {wanted} images; choose one of: {listed}")

    # --- blobs ---------------------------------------------------------------------

    async def _checked(self, repository: str, descriptor: Descriptor) -> ExportBlob:
        """A layer or config as a chunk source, after checking it is stored whole."""
        digest = descriptor.digest
        path = blob_path(digest)
        try:
            linked = await self.blobs.size_in(repository, digest)
            storage = (await self.blobs.regions.choose(digest)).storage  # a region that holds it
            stored = (await storage.stat(path)).size
        except (RegistryRefusal, PathNotFound):
            raise Conflict(
                f"blob {digest} of {repository} is not stored; the image is incomplete and cannot be "
                "downloaded (push it again)"
            ) from None
        if not linked == stored == descriptor.size:
            raise Conflict(
                f"blob {digest} of {repository} is {stored} bytes but its manifest says {descriptor.size}"
            )

        def source(offset: int) -> AsyncIterator[bytes]:
            return storage.reader(path, offset)

        return ExportBlob(digest, descriptor.size, descriptor.media_type, source=source)

    async def _config(self, repository: str, descriptor: Descriptor) -> bytes:
        try:
            data = await self.blobs.read(repository, descriptor.digest, MAX_CONFIG_BYTES)
        except RegistryRefusal as exc:
            raise Conflict(f"the image config {descriptor.digest} cannot be read: {exc}") from None
        if Digest.of(data, descriptor.digest.algorithm) != descriptor.digest:
            raise Conflict(f"the stored image config does not match its digest {descriptor.digest}")
        return data

    async def _add_image_blobs(
        self, repository: str, parsed: ParsedManifest, blobs: dict[str, ExportBlob]
    ) -> None:
        # Non-distributable (foreign) layers are not stored by registries; an OCI layout may omit them.
        for descriptor in parsed.blob_references:
            if descriptor.digest not in blobs:
                blobs[descriptor.digest] = await self._checked(repository, descriptor)

    async def _collect(
        self, repository: str, index: ParsedManifest, blobs: dict[str, ExportBlob], depth: int
    ) -> None:
        """Every manifest and blob below ``index``."""
        if depth > MAX_DEPTH:
            raise Conflict(f"the index nests more than {MAX_DEPTH} levels deep")
        for child in index.manifests:
            if child.digest in blobs:
                continue
            stored = await self._manifest(repository, str(child.digest))
            blobs[child.digest] = _as_blob(stored)
            parsed = parse_manifest(stored.content, stored.media_type)
            if parsed.is_index:
                await self._collect(repository, parsed, blobs, depth + 1)
            else:
                await self._add_image_blobs(repository, parsed, blobs)

    async def _docker_image(self, repository: str, parsed: ParsedManifest, reference: str) -> DockerImage:
        assert parsed.config is not None
        foreign = [d for d in parsed.layers if d.media_type in mt.NON_DISTRIBUTABLE]
        if foreign:
            raise Conflict(
                f"the image has {len(foreign)} non-distributable (foreign) layers that registries do not "
                "store, so docker load could not use it; download it with ?format=oci"
            )
        config = await self._config(repository, parsed.config)
        layers = [await self._checked(repository, layer) for layer in parsed.layers]
        return DockerImage(config, layers, [reference])


def _as_blob(stored: StoredManifest) -> ExportBlob:
    return ExportBlob(Digest(stored.digest), stored.size, stored.media_type, data=stored.content)
