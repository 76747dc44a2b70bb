"""Test data: one large random file, made unique per upload cheaply, and OCI image layouts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from bench.config import MiB

SUFFIX = 32  # bytes rewritten at the end of the blob to make every upload a new digest


def write_random_file(path: Path, size: int, seed: int | None = None) -> None:
    """Incompressible data; random.randbytes is ~2x faster than os.urandom here."""
    rng = random.Random(seed if seed is not None else os.urandom(16))
    step = 4 * MiB
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(step, left)
            f.write(rng.randbytes(n))
            left -= n


class BlobSource:
    """A random file whose last ``SUFFIX`` bytes are rewritten for each upload.

    The sha256 state of everything before the suffix is computed once, so a new digest costs
    a hash of 32 bytes, and the body stays in the page cache for sendfile."""

    def __init__(self, path: Path, size: int) -> None:
        if size <= SUFFIX:
            raise ValueError("blob too small")
        self.path = path
        self.size = size
        write_random_file(path, size)
        self._prefix = hashlib.sha256()
        with path.open("rb") as f:
            left = size - SUFFIX
            while left > 0:
                chunk = f.read(min(16 * MiB, left))
                self._prefix.update(chunk)
                left -= len(chunk)
        self.fd = os.open(path, os.O_RDWR)
        self.digest = self._digest_of(os.pread(self.fd, SUFFIX, size - SUFFIX))

    def _digest_of(self, suffix: bytes) -> str:
        h = self._prefix.copy()
        h.update(suffix)
        return "sha256:" + h.hexdigest()

    def next_variant(self) -> str:
        """Rewrite the tail with fresh random bytes; returns the new content's digest."""
        suffix = os.urandom(SUFFIX)
        os.pwrite(self.fd, suffix, self.size - SUFFIX)
        self.digest = self._digest_of(suffix)
        return self.digest

    def read(self, offset: int, count: int) -> bytes:
        return os.pread(self.fd, count, offset)

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class Layout:
    path: Path
    tag: str
    total_bytes: int  # sum of blob sizes (layers + config + manifest)
    layers: int


def _tar_layer(salt: bytes, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("salt", salt), ("data.bin", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _gzip_stored(data: bytes) -> bytes:
    """A gzip stream with stored (level 0) blocks: valid gzip, so skopeo pushes it as is
    instead of compressing random data itself, and costs ~nothing to make."""
    comp = zlib.compressobj(0, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def _write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return "sha256:" + hexdigest, len(data)


def build_layout(dest: Path, source: BlobSource, layers: int, layer_size: int, tag: str = "bench") -> Layout:
    """An OCI image layout with ``layers`` unique gzip layers of random data (from ``source``)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descriptors: list[dict[str, object]] = []
    diff_ids: list[str] = []
    total = 0
    span = max(source.size - layer_size, 1)
    for i in range(layers):
        offset = (i * layer_size) % span
        tar = _tar_layer(os.urandom(32), source.read(offset, min(layer_size, source.size)))
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        digest, size = _write_blob(blobs, _gzip_stored(tar))
        total += size
        descriptors.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}
        )
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_digest, config_size = _write_blob(blobs, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": descriptors,
        }
    ).encode()
    manifest_digest, manifest_size = _write_blob(blobs, manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (dest / "index.json").write_text(json.dumps(index))
    return Layout(dest, tag, total + config_size + manifest_size, layers)
