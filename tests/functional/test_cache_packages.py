"""The packages of a pull-through cache's image: read from the layers a client pulled through
the cache, never fetched from the upstream for the catalog (the cache downloads only what
clients ask for)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.catalog import CatalogUser
from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api, TokenAuth, unique
from tests.support.package_dbs import DPKG_STATUS, layer, python_metadata
from tests.support.servers import RunningRegistry
from tests.support.upstreams import start_upstream_registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SCAN_DEADLINE = 60.0


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[RunningRegistry]:
    registry = start_upstream_registry(tmp_path / "upstream")
    try:
        yield registry
    finally:
        registry.stop()


def push_upstream(registry: RunningRegistry, repository: str, blobs: list[bytes], tag: str) -> None:
    """An OCI image of ``blobs`` (the first is the config) on the upstream, by plain HTTP."""
    base = f"http://{registry.host}/v2/{repository}"
    described = []
    with httpx.Client(timeout=60) as http:
        for data in blobs:
            digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
            start = http.post(f"{base}/blobs/uploads/")
            assert start.status_code == 202, start.text
            location = httpx.URL(f"http://{registry.host}").join(start.headers["location"])
            assert http.put(location.copy_merge_params({"digest": digest}), content=data).status_code == 201
            described.append({"digest": digest, "size": len(data)})
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **described[0]},
            "layers": [{"mediaType": LAYER, **blob} for blob in described[1:]],
        }
        put = http.put(
            f"{base}/manifests/{tag}", content=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST}
        )
        assert put.status_code == 201, put.text


def test_a_cached_image_s_layers_are_read_through_the_cache(
    token_registry: RunningRegistry, upstream: RunningRegistry
) -> None:
    cache = unique("cache")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_workspace(cache)
        api.call("PUT", f"/workspaces/{cache}/cache", json={"limit_bytes": "1GiB", "revalidate_seconds": "0"})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    files = {
        "var/lib/dpkg/status": DPKG_STATUS,
        "usr/lib/python3/dist-packages/six.dist-info/METADATA": python_metadata("six", "1.16.0"),
    }
    push_upstream(upstream, "library/deb", [config, layer(files)], "v1")
    ref = f"{cache}/{upstream.host.replace(':', '_')}/library/deb"

    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        got = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        with CatalogUser.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
            admin.wait_inspected(ref, "v1")  # its config was read through the cache
        # The index waits for the layer: the cache fetches it only when the client pulls it.
        layer_digest = got.json()["layers"][0]["digest"]
        pulled = http.get(f"/v2/{ref}/blobs/{layer_digest}")
        assert pulled.status_code == 200
        assert pulled.headers["dockyard-cache"] == "miss"  # not fetched before, for the catalog
    with CatalogUser.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        assert admin.wait_inspected(ref, "v1")["status"] == "available"
        deadline = time.monotonic() + SCAN_DEADLINE
        while (found := admin.http.get(f"/images/{ref}/versions/v1/packages").json())["scan"] is None:
            assert time.monotonic() < deadline, "the cached image was not scanned"
            time.sleep(0.05)

    assert found["scan"]["state"] == "succeeded", found["scan"]
    assert [(p["ecosystem"], p["name"]) for p in found["packages"]] == [
        ("deb", "base-files"),
        ("deb", "libssl3"),
        ("python", "six"),
    ]
