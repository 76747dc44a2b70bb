"""What an image archive holds, as ``formats.describe_archive`` reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from dockyard.oci.digest import Digest


class ArchiveFormat(StrEnum):
    DOCKER_SAVE = "docker-save"  # <v1 id>/layer.tar (docker < 25)
    DOCKER_SAVE_BLOBS = "docker-save-blobs"  # manifest.json over blobs/sha256 (docker >= 25)
    OCI_LAYOUT = "oci-layout"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class BlobRef:
    path: str  # canonical archive path (links resolved)
    media_type: str
    digest: Digest | None  # what the archive declares for the bytes at ``path``; None if nothing
    size: int | None


@dataclass(frozen=True)
class LayerRef(BlobRef):
    diff_id: Digest | None  # rootfs.diff_ids[i] of the config: sha256 of the uncompressed tar


@dataclass(frozen=True)
class PlatformImage:
    """One runnable image: a config and its ordered layers."""

    platform: Platform | None
    config: BlobRef  # digest and size always set (computed from the buffered bytes)
    layers: tuple[LayerRef, ...]
    manifest: BlobRef | None  # the archive's own manifest (OCI layout); None: to be generated
    attestation: bool = False  # buildx provenance / SBOM manifest inside an index


@dataclass(frozen=True)
class ArchiveImage:
    """What a user picks to create an image version: one image, or one multi-platform index."""

    repo_tags: tuple[str, ...]
    platforms: tuple[PlatformImage, ...]
    index: BlobRef | None = None  # the archive's image index when there is one


@dataclass(frozen=True)
class Expectation:
    """A fact about the bytes at ``path`` that is verified once they have streamed past."""

    path: str
    check: Literal["digest", "size", "diff_id"]
    expected: str | int
    context: str  # for the error message: "layer 2/5 of alpine:3.20 (linux/amd64)"


@dataclass(frozen=True)
class ArchiveDescription:
    format: ArchiveFormat
    images: tuple[ArchiveImage, ...]
    expectations: tuple[Expectation, ...] = field(default=(), repr=False)

    def blob_paths(self) -> list[str]:
        """Archive paths of every config and layer the images use, each once, in order."""
        seen: dict[str, None] = {}
        for image in self.images:
            for plat in image.platforms:
                seen[plat.config.path] = None
                for layer in plat.layers:
                    seen[layer.path] = None
        return list(seen)
