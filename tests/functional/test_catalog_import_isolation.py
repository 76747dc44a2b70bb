"""Import by URL cannot take another workspace's blob: a user who names, in a manifest on a
registry they control, the digest (and size) of a layer another workspace pushed privately
gets that layer only if the upstream serves its bytes. The upstream is Debian's
``docker-registry`` on loopback; the layer's bytes are removed from its storage (the manifest
stays), as if the user had only ever known the digest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.functional import test_catalog_external as external
from tests.functional.test_catalog_import import wait_import
from tests.support.catalog import CatalogUser, new_user
from tests.support.identity import PASSWORD, Api, oci_as
from tests.support.oci import OciClient, image_config, oci_manifest, random_blob
from tests.support.servers import RunningRegistry
from tests.support.upstreams import start_upstream_registry

pytestmark = pytest.mark.clients
admin, user = external.admin, external.user


def test_a_layer_of_another_workspace_named_by_digest_is_not_linked_without_its_bytes(
    user: CatalogUser, token_registry: RunningRegistry, admin: Api, tmp_path: Path
) -> None:
    layer = random_blob(5000)  # only workspace A (``user``) has it
    private = f"{user.name}/secret"
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        oci.push(private, oci_manifest(image_config(), [layer]), "v1")
    admin.set_visibility(private, "private")

    upstream = start_upstream_registry(tmp_path / "upstream")
    try:
        with OciClient.connect(upstream.url) as up:  # the layer must be there to push the manifest
            up.push("evil/app", oci_manifest(image_config(), [layer]), "v1")
    finally:
        upstream.stop()
    hex_ = layer.digest.split(":", 1)[1]
    root = upstream.data_dir / "docker" / "registry" / "v2"
    shutil.rmtree(root / "repositories" / "evil" / "app" / "_layers" / "sha256" / hex_)
    shutil.rmtree(root / "blobs" / "sha256" / hex_[:2] / hex_)
    upstream = start_upstream_registry(tmp_path / "again", data_dir=upstream.data_dir)
    try:
        with CatalogUser.connect(token_registry, new_user(admin, "bee")) as bee:
            created = bee.register(bee.name, f"{upstream.host}/evil/app:v1")
            image, version = created["image"], created["version"]
            bee.api.call("POST", f"/images/{image}/versions/{version}/import", 202, json={})
            done = wait_import(bee, image, version)
            assert done["state"] == "failed", done
            assert done["error"].startswith("not_found"), done
            assert f"the blob {layer.digest} of {upstream.host}/evil/app was not found" in done["error"]
            with oci_as(token_registry, bee.name, PASSWORD) as oci:
                assert oci.get_blob(image, layer.digest).status_code == 404
                assert oci.get_blob(private, layer.digest).status_code in (401, 403, 404)
    finally:
        upstream.stop()
