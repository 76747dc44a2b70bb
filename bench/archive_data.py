"""Image archives for the archive workloads, written with tarfile and hashlib.

- ``build_oci_archive``: an OCI image layout tar (``oci-layout``, ``index.json``, a manifest
  and a config, layers as ``blobs/sha256/<hex>``) whose layers are gzip streams of random
  data. Random data does not compress, like the layers of real images, which are already
  compressed: the server stores them as they are. The gzip streams use stored blocks
  (level 0), which cost nothing to make; the import does not decompress them either way.
- ``build_docker_archive``: a ``docker save`` tar (docker < 25: ``manifest.json``,
  ``repositories``, ``<id>.json``, ``<v1 id>/layer.tar``) whose layers are uncompressed tars
  of random data, so the server compresses every byte (gzip level 6) on the way in.

Every archive has new layers (a random salt file in each layer tar), so no import can skip
a layer that an earlier round stored. The blob offsets in the file are recorded, so the
same layers can be pushed to a registry with ``sendfile(2)`` straight from the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bench.data import BlobSource, _gzip_stored, _tar_layer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REPOSITORY = "bench/archive"


@dataclass(frozen=True)
class Member:
    """A file of the archive: its sha256, and where its bytes are in the archive file."""

    digest: str
    offset: int
    size: int


@dataclass(frozen=True)
class Archive:
    path: Path
    fmt: str  # "oci" or "docker-save"
    tag: str  # the image's tag (RepoTags / ref.name): bench/archive:<tag>
    size: int  # of the archive file
    layers: list[Member]  # OCI: gzip blobs; docker-save: uncompressed layer tars
    config: bytes
    manifest: bytes  # OCI: the image manifest; docker-save: manifest.json

    @property
    def blob_bytes(self) -> int:
        """What a registry push of the image sends: layers, config and manifest."""
        return sum(m.size for m in self.layers) + len(self.config) + len(self.manifest)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _info(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0
    return info


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> int:
    """Add a regular file; the offset of its bytes in the archive."""
    tar.addfile(_info(name, len(data)), io.BytesIO(data))
    padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return tar.offset - padded


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, 0, tarfile.DIRTYPE))


def _layer_tars(source: BlobSource, total: int, layer_size: int) -> list[tuple[int, int]]:
    """(offset in the source, size) of each layer's payload: ``total`` bytes in all."""
    count = max(1, -(-total // layer_size))
    size = min(layer_size, source.size)
    span = max(source.size - size, 1)
    return [((i * size) % span, size) for i in range(count)]


def _config(diff_ids: list[str]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "bench"} for _ in diff_ids],
        }
    ).encode()


def build_oci_archive(
    path: Path, source: BlobSource, total: int, layer_size: int, tag: str = "bench"
) -> Archive:
    """An OCI image layout tar of about ``total`` bytes of gzip layers (``layer_size`` each)."""
    layers: list[Member] = []
    diff_ids: list[str] = []
    with path.open("wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add_dir(tar, "blobs/")
        _add_dir(tar, "blobs/sha256/")
        for offset, size in _layer_tars(source, total, layer_size):
            layer_tar = _tar_layer(os.urandom(32), source.read(offset, size))
            diff_ids.append("sha256:" + _sha256(layer_tar))
            blob = _gzip_stored(layer_tar)
            del layer_tar
            hexdigest = _sha256(blob)
            at = _add(tar, f"blobs/sha256/{hexdigest}", blob)
            layers.append(Member("sha256:" + hexdigest, at, len(blob)))
        config = _config(diff_ids)
        config_hex = _sha256(config)
        _add(tar, f"blobs/sha256/{config_hex}", config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + config_hex, "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": m.digest, "size": m.size} for m in layers],
            }
        ).encode()
        manifest_hex = _sha256(manifest)
        _add(tar, f"blobs/sha256/{manifest_hex}", manifest)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": "sha256:" + manifest_hex,
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": f"{REPOSITORY}:{tag}",
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
        _add(tar, "index.json", json.dumps(index).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    return Archive(path, "oci", tag, path.stat().st_size, layers, config, manifest)


def build_docker_archive(
    path: Path, source: BlobSource, total: int, layer_size: int, tag: str = "bench"
) -> Archive:
    """A ``docker save`` tar (docker < 25 layout) of about ``total`` bytes of layer tars."""
    layers: list[Member] = []
    paths: list[str] = []
    diff_ids: list[str] = []
    parent = ""
    with path.open("wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for offset, size in _layer_tars(source, total, layer_size):
            layer_tar = _tar_layer(os.urandom(32), source.read(offset, size))
            diff_id = _sha256(layer_tar)
            v1_id = _sha256(f"{parent}{diff_id}".encode())
            _add_dir(tar, f"{v1_id}/")
            _add(tar, f"{v1_id}/VERSION", b"1.0")
            v1 = {"id": v1_id, "created": "1970-01-01T00:00:00Z", "os": "linux"}
            if parent:
                v1["parent"] = parent
            _add(tar, f"{v1_id}/json", json.dumps(v1).encode())
            at = _add(tar, f"{v1_id}/layer.tar", layer_tar)
            layers.append(Member("sha256:" + diff_id, at, len(layer_tar)))
            paths.append(f"{v1_id}/layer.tar")
            diff_ids.append("sha256:" + diff_id)
            parent = v1_id
        config = _config(diff_ids)
        config_name = _sha256(config) + ".json"
        _add(tar, config_name, config)
        manifest = json.dumps(
            [{"Config": config_name, "RepoTags": [f"{REPOSITORY}:{tag}"], "Layers": paths}]
        ).encode()
        _add(tar, "manifest.json", manifest)
        _add(tar, "repositories", json.dumps({REPOSITORY: {tag: parent}}).encode())
    return Archive(path, "docker-save", tag, path.stat().st_size, layers, config, manifest)
