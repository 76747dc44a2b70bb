"""Image archives for the upload tests, built with ``tarfile``: docker-save archives of small
images (random, incompressible layers, so sizes are predictable), multi-image archives, and
hostile archives (traversal, links out, devices, duplicates, missing files, a bomb, a
layer that does not match its digest).

And :class:`Uploads`: ``/api/v1/archives`` as one user, with helpers that assert success.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

Json = dict[str, Any]
Member = tuple[tarfile.TarInfo, bytes | None]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE, link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = kind, link, 0, 0o644
    if kind in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.mode = 0o755
    info.size = len(data) if data is not None else 0
    return info, data


def tar_of(members: Iterable[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def layer(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding ``files``."""
    return tar_of(entry(name, data) for name, data in files.items())


def random_layer(size: int, name: str = "data/random.bin") -> bytes:
    return layer({name: os.urandom(size)})


@dataclass(frozen=True)
class SavedImage:
    """One image for a docker-save archive: its layers (uncompressed tars) and tags."""

    layers: list[bytes]
    tags: list[str]
    architecture: str = "amd64"

    def config(self) -> bytes:
        doc = {
            "architecture": self.architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(data) for data in self.layers]},
        }
        return json.dumps(doc, sort_keys=True).encode()


def docker_save(images: list[SavedImage]) -> bytes:
    """A docker-save archive (docker < 25 layout: ``<id>/layer.tar``, ``<config id>.json``)."""
    members: list[Member] = []
    manifest = []
    for image in images:
        config = image.config()
        paths = []
        for data in image.layers:
            folder = hashlib.sha256(data).hexdigest()
            if f"{folder}/layer.tar" not in [m[0].name for m in members]:
                members += [entry(folder, kind=tarfile.DIRTYPE), entry(f"{folder}/layer.tar", data)]
            paths.append(f"{folder}/layer.tar")
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        members.append(entry(config_name, config))
        manifest.append({"Config": config_name, "RepoTags": image.tags, "Layers": paths})
    members.append(entry("manifest.json", json.dumps(manifest).encode()))
    return tar_of(members)


def docker_save_with(extra: list[Member], manifest: list[Json] | None = None) -> bytes:
    """A small valid-looking docker-save archive plus ``extra`` members (for hostile cases)."""
    data = layer({"hello.txt": b"hello\n"})
    image = SavedImage([data], ["hostile/app:1"])
    config = image.config()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    folder = hashlib.sha256(data).hexdigest()
    doc = manifest or [{"Config": config_name, "RepoTags": image.tags, "Layers": [f"{folder}/layer.tar"]}]
    return tar_of(
        [
            entry(f"{folder}/layer.tar", data),
            entry(config_name, config),
            *extra,
            entry("manifest.json", json.dumps(doc).encode()),
        ]
    )


def oci_archive(layers: list[bytes], tag: str) -> bytes:
    """An OCI image layout archive of one image with these (uncompressed) layers, stored as gzip
    without compression: imports pass such layers through, so big ones are quick to build and read."""
    packed = [gzip.compress(data, compresslevel=0, mtime=0) for data in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(data) for data in layers]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256(g), "size": len(g)} for g in packed],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ],
        }
    ).encode()
    blobs = [entry(f"blobs/sha256/{sha256(b).split(':', 1)[1]}", b) for b in [*packed, config, manifest]]
    return tar_of(
        [entry("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), *blobs, entry("index.json", index)]
    )


def oci_layout_with_bad_layer() -> bytes:
    """An OCI archive whose layer blob is named by one digest but holds other bytes."""
    good = gzip.compress(layer({"a.txt": b"a\n"}), mtime=0)
    bad = gzip.compress(layer({"a.txt": b"tampered\n"}), mtime=0)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(b"x")]}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256(good), "size": len(good)}],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest)}],
        }
    ).encode()

    def blob(digest: str, data: bytes) -> Member:
        return entry(f"blobs/sha256/{digest.split(':', 1)[1]}", data)

    return tar_of(
        [
            entry("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            blob(sha256(good), bad),
            blob(sha256(config), config),
            blob(sha256(manifest), manifest),
            entry("index.json", index),
        ]
    )


def gzip_bomb(uncompressed: int) -> bytes:
    """A gzip'd tar holding one file of ``uncompressed`` zero bytes (a ratio of about 1000)."""
    header = tarfile.TarInfo("zeros.bin")
    header.size, header.mtime = uncompressed, 0
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(header.tobuf(format=tarfile.USTAR_FORMAT))]
    zeros = bytes(1 << 20)
    left = uncompressed
    while left:
        step = min(left, len(zeros))
        parts.append(compressor.compress(zeros[:step]))
        left -= step
    parts.append(compressor.compress(bytes(-uncompressed % 512 + 1024)))
    parts.append(compressor.flush())
    return b"".join(parts)


# --------------------------------------------------------------------------- the API


@dataclass
class Uploads:
    """``/api/v1/archives`` through ``http`` (an /api/v1 client signed in as a user)."""

    http: httpx.Client

    def start(self, workspace: str, size: int | None = None, **fields: Any) -> str:
        response = self.http.post("/archives", json={"workspace": workspace, "size": size, **fields})
        assert response.status_code == 201, response.text
        body: Json = response.json()
        assert (body["state"], body["offset"]) == ("receiving", 0), body
        assert response.headers["Location"] == f"/api/v1/archives/{body['id']}"
        archive_id: str = body["id"]
        return archive_id

    def send(self, archive_id: str, data: bytes, start: int, total: int | None = None) -> httpx.Response:
        end = start + len(data) - 1
        return self.http.patch(
            f"/archives/{archive_id}",
            content=data,
            headers={
                "Content-Range": f"bytes {start}-{end}/{total if total is not None else '*'}",
                "Content-Type": "application/octet-stream",
            },
        )

    def status(self, archive_id: str) -> Json:
        response = self.http.get(f"/archives/{archive_id}")
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body

    def after_importing(self, archive_id: str, seconds: float = 120) -> Json:
        """The session once it is no longer importing (polled, as a client follows it)."""
        deadline = time.monotonic() + seconds
        while (status := self.status(archive_id))["state"] == "importing":
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        return status

    def send_all(
        self, archive_id: str, data: bytes, chunk: int, start: int = 0, stop: int | None = None
    ) -> None:
        """Send ``data[start:stop]`` in chunks (the total named is ``len(data)``)."""
        stop = len(data) if stop is None else stop
        for offset in range(start, stop, chunk):
            end = min(offset + chunk, stop)
            response = self.send(archive_id, data[offset:end], offset, len(data))
            assert response.status_code == 202, response.text
            assert response.json()["offset"] == end
            assert response.headers["Upload-Offset"] == str(end)

    def complete(self, archive_id: str, expect: int = 200) -> httpx.Response:
        response = self.http.put(f"/archives/{archive_id}", timeout=300)
        assert response.status_code == expect, response.text
        return response

    def upload(self, workspace: str, data: bytes, chunk: int = 256 * 1024, **fields: Any) -> Json:
        """Start, send in chunks, complete; the imported session."""
        archive_id = self.start(workspace, len(data), **fields)
        self.send_all(archive_id, data, chunk)
        done: Json = self.complete(archive_id).json()
        assert done["state"] == "done", done
        assert done["offset"] == done["size"] == done["processed"] == len(data), done
        return done

    def finish(self, archive_id: str) -> Json:
        """The upload's final PUT, as ``dockyard image upload`` sends it: answered again while the
        server says another request (another replica, still taking in the last chunk) holds the
        session — the 409 tells the client to try again when that request is done."""
        deadline = time.monotonic() + 120
        while True:
            response = self.http.put(f"/archives/{archive_id}", timeout=300)
            busy = response.status_code == 409 and "another request is working" in response.text
            if not busy or time.monotonic() > deadline:
                assert response.status_code == 200, response.text
                found: Json = response.json()
                return found
            time.sleep(0.5)  # the retry interval of the CLI (cli/archives.py)

    def create(self, archive_id: str, expect: int = 201, **fields: Any) -> httpx.Response:
        response = self.http.post(f"/archives/{archive_id}/create-version", json=fields, timeout=120)
        assert response.status_code == expect, response.text
        return response

    def one_shot(self, workspace: str, data: bytes, **params: Any) -> httpx.Response:
        return self.http.post(
            "/archives/import",
            params={"workspace": workspace, **params},
            content=data,
            headers={"Content-Type": "application/x-tar"},
            timeout=300,
        )
