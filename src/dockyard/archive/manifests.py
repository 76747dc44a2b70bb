"""The manifests to push for an imported image.

Manifest bytes are sacred: when the archive's own OCI manifest still describes the blobs
as stored (nothing was recompressed), its exact bytes are pushed, so the image keeps its
digest. Otherwise (docker save, or layers compressed on import) an OCI manifest is
generated from the stored blobs; a multi-platform index is regenerated the same way when
any of its platform manifests changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockyard.archive import media
from dockyard.archive.formats import ArchiveImage, Platform, PlatformImage
from dockyard.archive.ingest import ArchiveImport
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest


@dataclass(frozen=True)
class ManifestBytes:
    media_type: str
    data: bytes
    platform: Platform | None = None

    @property
    def digest(self) -> Digest:
        return Digest.of(self.data)


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def image_manifest(image: PlatformImage, imported: ArchiveImport) -> ManifestBytes:
    """The manifest for one platform image, as the registry should store it."""
    stored = [imported.stored(layer) for layer in image.layers]
    config = imported.stored(image.config)
    if image.manifest is not None and not any(blob.transcoded for blob in [config, *stored]):
        return ManifestBytes(
            image.manifest.media_type, imported.metadata[image.manifest.path], image.platform
        )
    config_type = (
        media.OCI_CONFIG if image.config.media_type == media.DOCKER_CONFIG else image.config.media_type
    )
    layers = []
    for ref, blob in zip(image.layers, stored, strict=True):
        keep = image.manifest is not None and not blob.transcoded
        media_type = ref.media_type if keep else media.oci_layer_type(blob.compression)
        layers.append({"mediaType": media_type, "digest": blob.digest, "size": blob.size})
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config.digest, "size": config.size},
        "layers": layers,
    }
    return ManifestBytes(mt.OCI_MANIFEST, _dumps(doc), image.platform)


def image_manifests(
    image: ArchiveImage, imported: ArchiveImport
) -> tuple[ManifestBytes | None, list[ManifestBytes]]:
    """The index (None for a single-platform image) and the platform manifests to push."""
    manifests = [image_manifest(plat, imported) for plat in image.platforms]
    if image.index is None:
        return None, manifests
    unchanged = all(
        plat.manifest is not None and m.digest == plat.manifest.digest
        for plat, m in zip(image.platforms, manifests, strict=True)
    )
    if unchanged:
        return ManifestBytes(image.index.media_type, imported.metadata[image.index.path]), manifests
    # A regenerated index drops attestation manifests: they name the old platform digests.
    manifests = [m for plat, m in zip(image.platforms, manifests, strict=True) if not plat.attestation]
    entries = []
    for m in manifests:
        entry: dict[str, Any] = {"mediaType": m.media_type, "digest": m.digest, "size": len(m.data)}
        if m.platform is not None:
            entry["platform"] = _platform(m.platform)
        entries.append(entry)
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    return ManifestBytes(mt.OCI_INDEX, _dumps(doc)), manifests


def _platform(platform: Platform) -> dict[str, str]:
    out = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    if platform.os_version:
        out["os.version"] = platform.os_version
    return out
