"""Build docker-save and OCI archives in memory, and a blob sink that keeps blobs in memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import zstandard

from dockyard.archive import media
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest

Member = tuple[tarfile.TarInfo, bytes | None]


def info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = kind
    ti.linkname = linkname
    ti.mtime = 0
    return ti


def file(name: str, data: bytes) -> Member:
    return info(name, len(data)), data


def tar_bytes(members: Iterable[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An image layer: an uncompressed tar of files."""
    return tar_bytes(file(name, data) for name, data in files.items())


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def sha(data: bytes) -> Digest:
    return Digest.of(data)


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


async def chunked(data: bytes, size: int = 7000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


@dataclass
class FakeImage:
    layers: list[bytes]  # uncompressed layer tars
    tags: list[str] = field(default_factory=lambda: ["example/app:1.0"])
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    claimed_diff_ids: list[Digest] | None = None  # what the config says, if not the truth
    config_padding: int = 0

    @property
    def diff_ids(self) -> list[Digest]:
        if self.claimed_diff_ids is not None:
            return self.claimed_diff_ids
        return [sha(layer) for layer in self.layers]

    def config(self) -> bytes:
        doc: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
        }
        if self.variant:
            doc["variant"] = self.variant
        if self.config_padding:
            doc["comment"] = "x" * self.config_padding
        return dumps(doc)

    def platform(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


def docker_save_old(images: list[FakeImage], symlink_duplicates: bool = True) -> list[Member]:
    """docker < 25: <v1 id>/{VERSION,json,layer.tar}, <config id>.json, manifest.json, repositories."""
    members: list[Member] = []
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: dict[bytes, str] = {}
    for n, image in enumerate(images):
        config = image.config()
        layer_paths = []
        for i, layer in enumerate(image.layers):
            v1 = hashlib.sha256(f"{n}-{i}".encode()).hexdigest()
            members += [
                (info(f"{v1}/", kind=tarfile.DIRTYPE), None),
                file(f"{v1}/VERSION", b"1.0"),
                file(f"{v1}/json", dumps({"id": v1})),
            ]
            if layer in written and symlink_duplicates:
                members.append((info(f"{v1}/layer.tar", kind=tarfile.SYMTYPE, linkname=written[layer]), None))
            else:
                members.append(file(f"{v1}/layer.tar", layer))
                written[layer] = f"../{v1}/layer.tar"
            layer_paths.append(f"{v1}/layer.tar")
        members.append(file(f"{sha(config).hex}.json", config))
        manifest.append({"Config": f"{sha(config).hex}.json", "RepoTags": image.tags, "Layers": layer_paths})
        for tag in image.tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = layer_paths[-1].split("/")[0]
    members += [file("manifest.json", dumps(manifest)), file("repositories", dumps(repositories))]
    return members


def oci_manifest(config: bytes, layers: list[tuple[str, bytes]]) -> bytes:
    return dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": t, "digest": sha(b), "size": len(b)} for t, b in layers],
        }
    )


def blob(data: bytes) -> Member:
    return file(f"blobs/sha256/{sha(data).hex}", data)


def docker_save_new(images: list[FakeImage]) -> list[Member]:
    """docker >= 25: blobs/sha256 (uncompressed layers), manifest.json, oci-layout, index.json."""
    members: list[Member] = [(info("blobs/", kind=tarfile.DIRTYPE), None)]
    manifest, index, seen = [], [], set()
    for image in images:
        config = image.config()
        for data in [*image.layers, config]:
            if sha(data) not in seen:
                seen.add(sha(data))
                members.append(blob(data))
        om = oci_manifest(config, [(media.OCI_LAYER, layer) for layer in image.layers])
        members.append(blob(om))
        manifest.append(
            {
                "Config": f"blobs/sha256/{sha(config).hex}",
                "RepoTags": image.tags,
                "Layers": [f"blobs/sha256/{sha(layer).hex}" for layer in image.layers],
            }
        )
        for tag in image.tags:
            index.append(
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": sha(om),
                    "size": len(om),
                    "annotations": {
                        media.CONTAINERD_IMAGE_NAME: f"docker.io/{tag}",
                        media.REF_NAME: tag.split(":")[-1],
                    },
                }
            )
    members += [
        file("index.json", dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index})),
        file("manifest.json", dumps(manifest)),
        file("oci-layout", dumps({"imageLayoutVersion": "1.0.0"})),
    ]
    return members


def oci_multiplatform(images: list[FakeImage], ref_name: str = "example/app:2.0") -> list[Member]:
    """An OCI layout whose index.json points at one image index with a platform per image."""
    members: list[Member] = [file("oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))]
    entries = []
    written: set[str] = set()
    for image in images:
        config = image.config()
        layers = [gz(layer) for layer in image.layers]
        om = oci_manifest(config, [(media.OCI_LAYER_GZIP, layer) for layer in layers])
        for data in [*layers, config, om]:
            if sha(data) not in written:
                written.add(sha(data))
                members.append(blob(data))
        entries.append(
            {"mediaType": mt.OCI_MANIFEST, "digest": sha(om), "size": len(om), "platform": image.platform()}
        )
    index = dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    members.append(blob(index))
    top = {
        "mediaType": mt.OCI_INDEX,
        "digest": sha(index),
        "size": len(index),
        "annotations": {media.REF_NAME: ref_name},
    }
    members.append(
        file("index.json", dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [top]}))
    )
    return members


class MemoryWriter:
    def __init__(self, sink: MemorySink, name: str) -> None:
        self.sink = sink
        self.name = name
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    async def finish(self) -> tuple[Digest, int]:
        data = b"".join(self.parts)
        self.sink.blobs[self.name] = data
        return Digest.of(data), len(data)

    async def abort(self) -> None:
        self.sink.aborted.append(self.name)


class MemorySink:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.aborted: list[str] = []

    async def begin(self, name: str) -> MemoryWriter:
        if name in self.blobs:
            raise AssertionError(f"{name} written twice")
        return MemoryWriter(self, name)

    async def flush(self) -> None:
        pass  # finished blobs are kept at once
