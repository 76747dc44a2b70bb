"""Import by URL: an external version copied into Dockyard's storage, over HTTP as users see it.

The upstream is Debian's ``docker-registry`` on loopback holding a 2-platform index (plus an
attestation entry) pushed with skopeo; the user registers it as an external version and
imports it. Every manifest and blob Dockyard then serves is compared byte for byte with the
upstream's, and the version is internal with its provenance kept.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

# The external-image tests' upstreams (a 2-platform index on docker-registry), admin and user.
from tests.functional import test_catalog_external as external
from tests.support.catalog import CatalogUser, Upstreams, new_user
from tests.support.cli import Cli
from tests.support.identity import PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients
upstreams, admin, user = external.upstreams, external.admin, external.user

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def wait_import(user: CatalogUser, image: str, version: str, deadline: float = 60.0) -> dict[str, Any]:
    """Poll the import until it is no longer running."""
    end = time.monotonic() + deadline
    while True:
        found: dict[str, Any] = user.api.call("GET", f"/images/{image}/versions/{version}/import")
        if found["state"] != "running" or time.monotonic() > end:
            return found
        time.sleep(0.1)


def upstream_content(host: str, repository: str, reference: str) -> dict[str, bytes]:
    """Every manifest and blob of ``repository:reference`` on an open upstream, by digest."""
    found: dict[str, bytes] = {}
    with httpx.Client(base_url=f"http://{host}/v2/{repository}") as http:
        walk(lambda path: http.get(path, headers={"Accept": ACCEPT}), reference, found)
    return found


def walk(get: Any, reference: str, found: dict[str, bytes]) -> str:
    answer = get(f"/manifests/{reference}")
    assert answer.status_code == 200, answer.text
    digest = "sha256:" + hashlib.sha256(answer.content).hexdigest()
    found[digest] = answer.content
    document = json.loads(answer.content)
    for entry in document.get("manifests", []):
        walk(get, entry["digest"], found)
    for blob in [document.get("config"), *document.get("layers", [])]:
        if blob is not None:
            data = get(f"/blobs/{blob['digest']}")
            assert data.status_code == 200
            found[blob["digest"]] = data.content
    return digest


def test_an_external_index_is_imported_byte_identical_and_becomes_internal(
    user: CatalogUser, upstreams: Upstreams, token_registry: RunningRegistry
) -> None:
    created = user.register(user.name, upstreams.ref("library/multi:v1"))
    image, version = created["image"], created["version"]
    started = user.api.call("POST", f"/images/{image}/versions/{version}/import", 202, json={})
    assert started["state"] == "running"
    assert started["source_reference"] == upstreams.ref("library/multi:v1")
    done = wait_import(user, image, version)
    assert done["state"] == "succeeded", done
    assert done["progress"]["blobs_done"] == done["progress"]["blobs_total"] > 0
    assert done["progress"]["bytes_done"] == done["progress"]["bytes_total"]
    expected = upstream_content(upstreams.open.host, "library/multi", "v1")
    assert done["source_digest"] == done["digest"] == upstreams.images.index.digest
    served: dict[str, bytes] = {}
    repository = image
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        top = walk(
            lambda path: (
                oci.get_manifest(repository, path.split("/manifests/")[1])
                if "/manifests/" in path
                else oci.get_blob(repository, path.split("/blobs/")[1])
            ),
            version,
            served,
        )
    assert top == upstreams.images.index.digest
    assert served == expected
    view = user.version(image, version)
    assert view["source"] == "internal"
    assert view["digest"] == upstreams.images.index.digest
    assert view["imported"]["source_reference"] == upstreams.ref("library/multi:v1")
    assert view["imported"]["source_digest"] == upstreams.images.index.digest
    assert view["imported"]["imported_by"] == user.name
    history = user.api.call("GET", f"/images/{image}/events")
    imported = [event for event in history if event["kind"] == "imported"]
    assert imported
    assert imported[0]["detail"]["source_reference"] == upstreams.ref("library/multi:v1")
    assert imported[0]["detail"]["imported_by"] == user.name


def test_importing_needs_push_permission_and_an_external_version(
    user: CatalogUser, upstreams: Upstreams, token_registry: RunningRegistry, admin: Api
) -> None:
    created = user.register(user.name, upstreams.ref("library/amd:v1"))
    image, version = created["image"], created["version"]
    with CatalogUser.connect(token_registry, new_user(admin, "other")) as other:
        refused = other.http.post(f"/images/{image}/versions/{version}/import", json={})
        assert refused.status_code in (403, 404), refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    bad = user.http.post(f"/images/{image}/versions/{version}/import", json={"platforms": ["nope"]})
    assert bad.status_code == 422
    user.api.call("POST", f"/images/{image}/versions/{version}/import", 202, json={})
    assert wait_import(user, image, version)["state"] == "succeeded"
    again = user.http.post(f"/images/{image}/versions/{version}/import", json={})
    assert again.status_code == 409, again.text


def test_the_cli_imports_chosen_platforms_and_explains_a_failure(
    user: CatalogUser, upstreams: Upstreams, token_registry: RunningRegistry, tmp_path: Path
) -> None:
    cli = Cli(token_registry, tmp_path / "cli.toml")
    cli.ok("login", token_registry.url, "-u", user.name, "--password-stdin", stdin=PASSWORD + "\n")
    created = user.register(user.name, upstreams.ref("library/multi:v1"), name="multi-arm")
    image, version = created["image"], created["version"]
    said = cli.ok("image", "import", f"{image}:{version}", "--platform", "linux/arm64/v8")
    assert f"Imported {image}:{version} from {upstreams.ref('library/multi:v1')}" in said
    found = cli.json("image", "import", f"{image}:{version}", "--json")  # done: shows the import
    assert found["state"] == "succeeded"
    assert found["platforms"] == ["linux/arm64/v8"]
    assert found["source_digest"] == upstreams.images.index.digest
    assert found["digest"] != found["source_digest"]  # the index now lists one platform
    arm = upstreams.images.arm64
    assert found["progress"]["blobs_total"] == 1 + len(arm.layers)
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        index = json.loads(oci.get_manifest(image, version).content)
        assert [entry["digest"] for entry in index["manifests"]] == [arm.manifest.digest]
        assert not oci.blob_exists(image, upstreams.images.amd64.layers[0].digest)

    missing = user.register(user.name, upstreams.ref("library/multi:nope"), name="multi-missing")
    failed = cli.fails("image", "import", f"{missing['image']}:{missing['version']}")
    assert "library/multi:nope was not found" in failed.stderr
