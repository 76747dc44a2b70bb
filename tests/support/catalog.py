"""Test support for the catalog (``/api/v1/images``, ``/runnable``, usage, policies).

- :class:`CatalogUser`: one signed-in user's view of ``/api/v1`` with catalog helpers (register an
  external image, read a version, wait for an internal version's inspection to end).
- :func:`problem`: the ``detail`` of an ``application/problem+json`` answer, checked.
- :class:`Upstreams` / :func:`start_upstreams`: two local ``docker-registry`` upstreams (open,
  and behind htpasswd) holding the 2-platform index, the amd64 image and the arm64-only image
  of :func:`tests.support.upstreams.build_upstream_images`, pushed with skopeo.
- :func:`stored_sizes`: an image's compressed and uncompressed size computed from what the
  registry serves (its manifest's blobs, each layer decompressed and counted).
- :func:`gzip_layer`, :func:`image_config`, :func:`zstd_zeros`: content for pushes over the
  Distribution API.
"""

from __future__ import annotations

import contextlib
import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.clients import Skopeo
from tests.support.identity import PASSWORD, Api, oci_as, unique
from tests.support.oci import OCI_CONFIG, OCI_LAYER, Blob, encode
from tests.support.servers import RunningRegistry
from tests.support.upstreams import UpstreamImages, start_upstream_registry

PROBLEM_JSON = "application/problem+json"
INSPECTION_DEADLINE = 60.0  # seconds an internal version may stay pending (inspection runs in the background)
UPSTREAM_USER = "alice"
UPSTREAM_SECRET = "alice-upstream-secret"
AMD64_ADVICE = "docker buildx build --platform linux/amd64,linux/arm64"
NOT_COPIED = "external images are not copied into Dockyard"

Json = dict[str, Any]


def problem(response: httpx.Response, status: int) -> str:
    """The ``detail`` of a problem answer with ``status``; fails on anything else."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: expected {status}, "
        f"got {response.status_code} {response.text[:500]}"
    )
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status, body
    detail: str = body["detail"]
    return detail


def warning_codes(version: Json) -> list[str]:
    return [w["code"] for w in version["warnings"]]


def warning(version: Json, code: str) -> str:
    """The message of the version's warning ``code``."""
    found = [w["message"] for w in version["warnings"] if w["code"] == code]
    assert len(found) == 1, f"expected one {code!r} warning, got {version['warnings']}"
    message: str = found[0]
    return message


@dataclass
class CatalogUser:
    """``/api/v1`` as one user (HTTP Basic with the password); helpers assert success."""

    api: Api
    registry: RunningRegistry

    @property
    def name(self) -> str:
        return self.api.username

    @property
    def http(self) -> httpx.Client:
        return self.api.http

    @classmethod
    @contextlib.contextmanager
    def connect(
        cls, registry: RunningRegistry, username: str, secret: str = PASSWORD
    ) -> Iterator[CatalogUser]:
        with Api.connect(registry, username, secret) as api:
            yield cls(api, registry)

    def register(self, workspace: str, reference: str, expect: int = 201, **fields: Any) -> Json:
        """POST /images (an external image); returns the version."""
        result: Json = self.api.call(
            "POST", "/images", expect, json={"workspace": workspace, "reference": reference, **fields}
        )
        return result

    def add_version(self, image: str, reference: str, expect: int = 201, **fields: Any) -> Json:
        result: Json = self.api.call(
            "POST", f"/images/{image}/versions", expect, json={"reference": reference, **fields}
        )
        return result

    def image(self, name: str) -> Json:
        result: Json = self.api.call("GET", f"/images/{name}")
        return result

    def version(self, image: str, version: str) -> Json:
        result: Json = self.api.call("GET", f"/images/{image}/versions/{version}")
        return result

    def verify(self, image: str, version: str) -> Json:
        result: Json = self.api.call("POST", f"/images/{image}/versions/{version}/verify")
        return result

    def resolve(self, image: str, version: str) -> Json:
        result: Json = self.api.call("GET", f"/images/{image}/versions/{version}/resolve")
        return result

    def events(self, image: str) -> list[Json]:
        """The image's history, oldest first (the API lists newest first)."""
        result: list[Json] = self.api.call("GET", f"/images/{image}/events")
        return list(reversed(result))

    def images(self, **params: Any) -> Json:
        result: Json = self.api.call("GET", "/images", params=params)
        return result

    def image_names(self, **params: Any) -> list[str]:
        return [item["name"] for item in self.images(limit=500, **params)["items"]]

    def runnable(self, **params: Any) -> list[Json]:
        result: list[Json] = self.api.call("GET", "/runnable", params=params)
        return result

    def set_policy(self, workspace: str, require_amd64: bool) -> None:
        body = {"require_amd64": require_amd64}
        assert self.api.call("PUT", f"/workspaces/{workspace}/catalog-policy", json=body) == body

    def new_workspace(self, label: str) -> str:
        """A fresh workspace this user owns."""
        name = unique(label)
        self.api.create_workspace(name)
        return name

    def wait_inspected(self, image: str, version: str, digest: str | None = None) -> Json:
        """Poll until an internal version's inspection has ended (``available`` or ``failed``),
        for the pushed ``digest`` when given; every status seen on the way must be ``pending``."""
        deadline = time.monotonic() + INSPECTION_DEADLINE
        seen: list[str] = []
        while True:
            response = self.http.get(f"/images/{image}/versions/{version}")
            if response.status_code == 200:
                found: Json = response.json()
                if digest is None or found["digest"] == digest:
                    seen.append(found["status"])
                    if found["status"] in ("available", "failed"):
                        assert set(seen[:-1]) <= {"pending"}, f"{image}:{version} went through {seen}"
                        return found
            else:
                assert response.status_code == 404, f"{response.status_code} {response.text[:300]}"
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{image}:{version} (digest {digest}) was not inspected within {INSPECTION_DEADLINE}s: "
                    f"{response.status_code} {response.text[:500]}"
                )
            time.sleep(0.05)


def new_user(admin: Api, label: str) -> str:
    """A fresh user (password ``PASSWORD``); their personal workspace has the same name."""
    name = unique(label)
    admin.create_user(name)
    return name


# --------------------------------------------------------------------------- upstream registries


@dataclass(frozen=True)
class Upstreams:
    """Local upstream registries: ``open`` (anonymous pulls) holding ``library/multi:v1`` (the
    2-platform index), ``library/amd:v1`` and ``library/arm:v1`` (arm64 only); ``private``
    (htpasswd, every anonymous request answered 401) holding ``team/secret:v1`` (amd64)."""

    open: RunningRegistry
    private: RunningRegistry
    images: UpstreamImages

    def ref(self, path: str) -> str:
        return f"{self.open.host}/{path}"


@contextlib.contextmanager
def start_upstreams(base: Path, images: UpstreamImages) -> Iterator[Upstreams]:
    with contextlib.ExitStack() as stack:
        open_registry = start_upstream_registry(base / "open")
        stack.callback(open_registry.stop)
        private = start_upstream_registry(base / "private", {UPSTREAM_USER: UPSTREAM_SECRET})
        stack.callback(private.stop)
        skopeo = Skopeo(base / "skopeo")
        exact = ["--preserve-digests"]
        skopeo.copy(
            images.ref("multi"),
            f"docker://{open_registry.host}/library/multi:v1",
            all_images=True,
            extra=exact,
        )
        skopeo.copy(images.ref("amd64"), f"docker://{open_registry.host}/library/amd:v1", extra=exact)
        skopeo.copy(images.ref("arm64"), f"docker://{open_registry.host}/library/arm:v1", extra=exact)
        skopeo.copy(
            images.ref("amd64"),
            f"docker://{private.host}/team/secret:v1",
            extra=[*exact, "--dest-creds", f"{UPSTREAM_USER}:{UPSTREAM_SECRET}"],
        )
        yield Upstreams(open_registry, private, images)


# --------------------------------------------------------------------------- sizes and content


@dataclass(frozen=True)
class StoredSizes:
    digest: str  # the manifest's
    config_digest: str
    compressed: int  # config + layers, as stored
    uncompressed: int  # config + every layer decompressed


def stored_sizes(registry: RunningRegistry, user: str, repository: str, reference: str) -> StoredSizes:
    """What the registry serves for an image manifest, measured independently of the catalog."""
    with oci_as(registry, user, PASSWORD) as oci:
        response = oci.get_manifest(repository, reference)
        assert response.status_code == 200, (
            f"{repository}:{reference}: {response.status_code} {response.text}"
        )
        manifest = response.json()
        digest = response.headers["docker-content-digest"]
        config = manifest["config"]
        compressed = config["size"]
        uncompressed = config["size"]
        for layer in manifest["layers"]:
            blob = oci.get_blob(repository, layer["digest"])
            assert blob.status_code == 200, f"{layer['digest']}: {blob.status_code}"
            assert len(blob.content) == layer["size"]
            compressed += layer["size"]
            assert "gzip" in layer["mediaType"], layer
            uncompressed += len(gzip.decompress(blob.content))
    return StoredSizes(digest, config["digest"], compressed, uncompressed)


def gzip_layer(text: str, repeat: int = 200) -> Blob:
    """A gzip layer whose uncompressed size is ``len(text) * repeat``."""
    return Blob(gzip.compress(text.encode() * repeat, compresslevel=6, mtime=0), OCI_LAYER)


ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
_RLE_BLOCK = 128 * 1024  # the largest zstd block


def zstd_zeros(size: int) -> bytes:
    """A zstd frame that expands to ``size`` zero bytes, written by hand as RLE blocks (4 bytes
    per 128 KiB, no compressor run): a decompression bomb, 8 MiB for 256 GiB (RFC 8878)."""
    frame = bytearray(b"\x28\xb5\x2f\xfd")  # magic number
    frame += bytes([0x00, 0x38])  # no content size, no checksum; window 2**17 bytes (one block)
    full, rest = divmod(size, _RLE_BLOCK)
    blocks = [_RLE_BLOCK] * full + ([rest] if rest or not full else [])
    for i, length in enumerate(blocks):
        last = int(i == len(blocks) - 1)
        frame += ((length << 3) | (1 << 1) | last).to_bytes(3, "little")  # block type 1: RLE
        frame += b"\x00"  # the byte repeated
    return bytes(frame)


def image_config(architecture: str = "amd64", variant: str | None = None, label: str = "") -> Blob:
    """An image config for ``linux/<architecture>[/<variant>]``; ``label`` keeps it distinct."""
    document: Json = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": {"test.label": label or unique("config")}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if variant:
        document["variant"] = variant
    return Blob(encode(document), OCI_CONFIG)
