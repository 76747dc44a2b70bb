"""Images that share layers, pushed with real blobs over /v2, for the lineage tests."""

from __future__ import annotations

import gzip
from typing import Any

from tests.support.catalog import CatalogUser, gzip_layer
from tests.support.oci import OCI_CONFIG, Blob, Manifest, OciClient, encode, oci_manifest, sha256

Json = dict[str, Any]


def layers(*texts: str) -> list[Blob]:
    """A gzip layer per text (the same text: the same layer)."""
    return [gzip_layer(text, repeat=50) for text in texts]


def image(stack: list[Blob], label: str, architecture: str = "amd64") -> Manifest:
    """An image of ``stack`` whose config lists its diff ids, as builders write them."""
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": {"test.label": label}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(layer.data)) for layer in stack]},
    }
    return oci_manifest(Blob(encode(config), OCI_CONFIG), stack)


def push(oci: OciClient, user: CatalogUser, name: str, tag: str, manifest: Manifest) -> Json:
    """Push ``name:tag`` and wait for its inspection; returns the version."""
    response = oci.push(name, manifest, tag)
    assert response.status_code == 201, response.text[:300]
    version = user.wait_inspected(name, tag, manifest.digest)
    assert version["status"] == "available", version
    return version


def based_on(user: CatalogUser, name: str, tag: str) -> Json | None:
    found: Json | None = user.version(name, tag)["based_on"]
    return found


def children(user: CatalogUser, name: str, tag: str, **params: Any) -> list[tuple[str, str, bool]]:
    page = user.api.call("GET", f"/images/{name}/versions/{tag}/children", params=params)
    return [(c["image"], c["version"], c["base_updated"]) for c in page["items"]]
