"""What the UI tests put in Dockyard before they look at it, through the same API and registry
that users' tools call (nothing is written to the database directly)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.catalog import gzip_layer, image_config
from tests.support.identity import PASSWORD, Api, oci_as, unique
from tests.support.oci import Blob, oci_manifest
from tests.support.package_dbs import layer
from tests.support.servers import RunningRegistry


def new_user(admin: Api, label: str) -> str:
    """A fresh user with the password ``PASSWORD``; their personal workspace has their name."""
    name = unique(label)
    admin.create_user(name, PASSWORD)
    return name


def register_external(registry: RunningRegistry, user: str, reference: str, **fields: Any) -> dict[str, Any]:
    with Api.connect(registry, user, PASSWORD) as api:
        body = {"workspace": user, "reference": reference, **fields}
        created: dict[str, Any] = api.call("POST", "/images", 201, json=body)
        return created


def push_internal(
    registry: RunningRegistry, user: str, repository: str, tag: str, files: Mapping[str, str] | None = None
) -> str:
    """Push a small linux/amd64 image as ``user``, its layer a tar of ``files`` when given (package
    databases: the server's package index reads them); returns the manifest digest."""
    content = Blob(layer(files)) if files is not None else gzip_layer(unique("layer"))
    manifest = oci_manifest(image_config("amd64", label=unique("ui")), [content])
    with oci_as(registry, user, PASSWORD) as oci:
        response = oci.push(repository, manifest, tag)
        assert response.status_code == 201, response.text
    return manifest.digest


def wait_status(registry: RunningRegistry, user: str, image: str, version: str, wanted: str) -> None:
    """Poll the API (deadline 60 s) until the version's status is ``wanted``."""
    import time

    deadline = time.monotonic() + 60
    with Api.connect(registry, user, PASSWORD) as api:
        while True:
            status = api.call("GET", f"/images/{image}/versions/{version}")["status"]
            if status == wanted:
                return
            assert status in ("pending", wanted), f"{image}:{version} ended {status}, not {wanted}"
            assert time.monotonic() < deadline, f"{image}:{version} still {status} after 60 s"
            time.sleep(0.2)


def wait_packages(registry: RunningRegistry, user: str, image: str, version: str) -> list[dict[str, Any]]:
    """Poll the API (deadline 60 s) until the version's packages have been read; returns them."""
    import time

    deadline = time.monotonic() + 60
    with Api.connect(registry, user, PASSWORD) as api:
        while (found := api.call("GET", f"/images/{image}/versions/{version}/packages"))["scan"] is None:
            assert time.monotonic() < deadline, f"{image}:{version} was not scanned in 60 s"
            time.sleep(0.2)
    assert found["scan"]["state"] == "succeeded", found["scan"]
    packages: list[dict[str, Any]] = found["packages"]
    return packages
