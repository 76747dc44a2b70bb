"""What an archive import found, kept in the session as JSON: per image, the manifests to
push (exact bytes, base64) and every blob they name; and how users see it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from dockyard.archive.ingest import ArchiveImport
from dockyard.archive.manifests import ManifestBytes, image_manifests
from dockyard.oci.manifest import parse_manifest
from dockyard.transfer.imports.sink import RegistrySink


@dataclass(frozen=True)
class ArchiveImageInfo:
    """One image of an imported archive, as the user chooses it."""

    index: int
    repo_tags: list[str]
    platforms: list[str]  # os/arch[/variant]; attestations left out
    media_type: str  # of the manifest or index that the version's tag will name
    digest: str
    size: int  # bytes of its blobs (configs and layers), as stored
    layers: int


@dataclass(frozen=True)
class ImportedImage:
    """What creating a version from an archive image needs."""

    repo_tags: list[str]
    platforms: list[str]
    index: ManifestBytes | None
    manifests: list[ManifestBytes]
    blobs: dict[str, int]  # digest -> size, every blob the manifests name

    @property
    def top(self) -> ManifestBytes:
        """What the version's tag names."""
        return self.index or self.manifests[0]

    def info(self, index: int) -> ArchiveImageInfo:
        layers = sum(len(parse_manifest(m.data, m.media_type).layers) for m in self.manifests)
        return ArchiveImageInfo(
            index=index,
            repo_tags=self.repo_tags,
            platforms=self.platforms,
            media_type=self.top.media_type,
            digest=str(self.top.digest),
            size=sum(self.blobs.values()),
            layers=layers,
        )


def result_json(imported: ArchiveImport, sink: RegistrySink) -> dict[str, Any]:
    images = []
    for image in imported.description.images:
        index, manifests = image_manifests(image, imported)
        needed: dict[str, int] = {}
        for m in manifests:
            for desc in parse_manifest(m.data, m.media_type).blob_references:
                needed[str(desc.digest)] = desc.size
        platforms = [str(p.platform) for p in image.platforms if p.platform is not None and not p.attestation]
        images.append(
            {
                "repo_tags": list(image.repo_tags),
                "platforms": platforms,
                "index": None if index is None else _manifest_json(index),
                "manifests": [_manifest_json(m) for m in manifests],
                "blobs": needed,
            }
        )
    return {
        "format": str(imported.description.format),
        "compression": str(imported.compression),
        "warnings": list(imported.warnings),
        "written": sink.written,
        "deduplicated": sink.deduplicated,
        "images": images,
    }


def images_of(result: dict[str, Any] | None) -> list[ImportedImage]:
    if result is None:
        return []
    return [
        ImportedImage(
            repo_tags=list(doc["repo_tags"]),
            platforms=list(doc["platforms"]),
            index=None if doc["index"] is None else _manifest_from_json(doc["index"]),
            manifests=[_manifest_from_json(m) for m in doc["manifests"]],
            blobs={k: int(v) for k, v in doc["blobs"].items()},
        )
        for doc in result["images"]
    ]


def _manifest_json(m: ManifestBytes) -> dict[str, str]:
    return {"media_type": m.media_type, "data": base64.b64encode(m.data).decode()}


def _manifest_from_json(doc: dict[str, str]) -> ManifestBytes:
    return ManifestBytes(doc["media_type"], base64.b64decode(doc["data"]))
