"""Write an image as a tar that ``docker load`` / ``podman load`` accept, or as an OCI archive.

docker-archive layout written here::

    manifest.json                [{"Config": "blobs/sha256/<c>", "RepoTags": [...],
                                   "Layers": ["blobs/sha256/<l1>", ...]}]
    blobs/sha256/<c>             the config, as stored
    blobs/sha256/<l1> ...        each layer blob as stored in the registry (gzip, zstd or plain)

manifest.json comes first so streaming readers (ours, containerd's) meet it before the
layers. The ``blobs/sha256/<digest>`` names are the docker >= 25 layout; each file's
sha256 matches its name because layers are written as stored, not recompressed. No
``repositories`` file: only pre-1.10 loaders need it.

Why layers can stay compressed: moby's loader (``image/tarexport/load.go``, ``loadLayer``)
opens each ``Layers`` file and passes it through ``compression.DecompressStream``
(moby/go-archive ``compression/compression.go``), which sniffs gzip, bzip2, xz and zstd
and passes plain tars through, before registering the layer and checking its diff_id
against the config. containers/image (podman, skopeo ``docker-archive:``;
``docker/internal/tarfile/src.go``) likewise ``AutoDecompress``es each layer file, and
containerd's importer (``core/images/archive/importer.go``, used by docker's containerd
image store) sniffs each layer and labels any compressed one as gzip; its differ
decompresses by sniffing too. gzip layers are accepted by all three; a zstd layer is
accepted by moby's loader and containers/image, while containerd's importer would label
it ``tar.gzip`` (only its sniffing differ makes that work), so an export of zstd layers
for the containerd store is the one case to cover in functional tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.archive import media
from dockyard.archive.tarwriter import ChunkSource, TarMember, TarStream
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest


@dataclass(frozen=True)
class ExportBlob:
    digest: Digest
    size: int
    media_type: str = ""
    data: bytes | None = None
    source: ChunkSource | None = None

    @classmethod
    def of(cls, data: bytes, media_type: str = "") -> ExportBlob:
        return cls(Digest.of(data), len(data), media_type, data=data)

    @property
    def path(self) -> str:
        return f"blobs/{self.digest.algorithm}/{self.digest.hex}"

    def member(self) -> TarMember:
        return TarMember(self.path, self.size, self.data, self.source)


@dataclass(frozen=True)
class DockerImage:
    config: bytes
    layers: Sequence[ExportBlob]
    repo_tags: Sequence[str] = ()


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _check_tag(tag: str) -> None:
    name, sep, value = tag.rpartition(":")
    if not sep or not name or not value or "/" in value or "@" in tag:
        raise ValueError(f"docker load needs name:tag references, not {tag!r}")


def docker_archive(images: Sequence[DockerImage]) -> TarStream:
    """Plan a docker-archive tar of ``images`` (blobs shared between images are written once)."""
    if not images:
        raise ValueError("nothing to export")
    items = []
    blobs: dict[str, TarMember] = {}
    for image in images:
        for tag in image.repo_tags:
            _check_tag(tag)
        config = ExportBlob.of(image.config, media.DOCKER_CONFIG)
        blobs.setdefault(config.path, config.member())
        for layer in image.layers:
            blobs.setdefault(layer.path, layer.member())
        items.append(
            {
                "Config": config.path,
                "RepoTags": list(image.repo_tags),
                "Layers": [layer.path for layer in image.layers],
            }
        )
    manifest = _dumps(items)
    return TarStream([TarMember("manifest.json", len(manifest), manifest), *blobs.values()])


def oci_archive(root: ExportBlob, blobs: Sequence[ExportBlob], ref_names: Sequence[str] = ()) -> TarStream:
    """Plan an OCI image layout tar: ``root`` is the manifest or index (with its media type),
    ``blobs`` every manifest, config and layer below it."""
    if root.data is None or root.media_type not in mt.MANIFESTS:
        raise ValueError("the root must be a manifest or index given as bytes, with its media type")
    descriptor: dict[str, Any] = {"mediaType": root.media_type, "digest": root.digest, "size": root.size}
    entries = [{**descriptor, "annotations": {media.REF_NAME: name}} for name in ref_names] or [descriptor]
    index = _dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    layout = _dumps({"imageLayoutVersion": media.OCI_LAYOUT_VERSION})
    members: dict[str, TarMember] = {root.path: root.member()}
    for blob in blobs:
        members.setdefault(blob.path, blob.member())
    return TarStream(
        [
            TarMember("oci-layout", len(layout), layout),
            TarMember("index.json", len(index), index),
            *members.values(),
        ]
    )
