"""Internal images: pushes to the registry become catalog versions, as users see them.

Images are pushed by real clients signed in to Dockyard in token mode (podman for the
runnable busybox image, skopeo for the upstream test layout: an arm64-only image and a
2-platform index). Each version starts ``pending`` while Dockyard reads the image in the
background, then ends ``available`` (or ``failed`` with the reason); tests poll with a
deadline. Sizes are checked against what the registry serves, measured independently.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.catalog import (
    AMD64_ADVICE,
    CatalogUser,
    new_user,
    problem,
    stored_sizes,
    warning,
    warning_codes,
)
from tests.support.clients import Podman, Result, Skopeo, containers_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.images import HELLO_PATH, HELLO_TEXT, TestImages, native_architecture
from tests.support.oci import OCI_EMPTY, Blob, oci_manifest
from tests.support.servers import RunningRegistry
from tests.support.upstreams import UpstreamImages, build_upstream_images

pytestmark = pytest.mark.clients

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SPDX = "application/spdx+json"


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture(scope="module")
def owner(token_registry: RunningRegistry, admin: Api) -> Iterator[CatalogUser]:
    """The module's user; they push to their personal workspace (named after them)."""
    with CatalogUser.connect(token_registry, new_user(admin, "pusher")) as user:
        yield user


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> UpstreamImages:
    """An OCI layout with an arm64-only image (tag ``arm64``), an amd64 image (``amd64``) and a
    2-platform index (``multi``), every blob known."""
    return build_upstream_images(tmp_path_factory.mktemp("catalog-layouts"))


@pytest.fixture(scope="module")
def skopeo_in(
    token_registry: RunningRegistry, owner: CatalogUser, tmp_path_factory: pytest.TempPathFactory
) -> Skopeo:
    """skopeo signed in to Dockyard as the owner."""
    skopeo = Skopeo(tmp_path_factory.mktemp("catalog-skopeo"))
    assert "Login Succeeded" in containers_login(skopeo, token_registry.host, owner.name, PASSWORD).stdout
    return skopeo


@dataclass(frozen=True)
class Pushed:
    image: str  # the catalog image (= the repository)
    version: str
    reference: str  # what podman pushed


@pytest.fixture(scope="module")
def busybox(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    test_images: TestImages,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pushed]:
    """The runnable busybox test image, pushed with podman (signed in as the owner) as ``tool:v1``."""
    podman = Podman(tmp_path_factory.mktemp("catalog-podman"))
    try:
        host = token_registry.host
        assert "Login Succeeded" in containers_login(podman, host, owner.name, PASSWORD).stdout
        image_id = podman.pull(test_images.image_ref)
        reference = f"{host}/{owner.name}/tool:v1"
        podman.tag(image_id, reference)
        podman.push(reference)
        yield Pushed(f"{owner.name}/tool", "v1", reference)
    finally:
        podman.close()


def _copy(skopeo: Skopeo, layouts: UpstreamImages, tag: str, dest: str, *, check: bool = True) -> Result:
    """Push a layout image to Dockyard byte for byte (``multi``: the index and every platform)."""
    return skopeo.copy(
        layouts.ref(tag),
        f"docker://{dest}",
        all_images=tag == "multi",
        extra=["--preserve-digests"],
        check=check,
    )


# --------------------------------------------------------------------------- a podman push


def test_a_podman_push_appears_with_status_platforms_sizes_and_history(
    token_registry: RunningRegistry, owner: CatalogUser, busybox: Pushed, test_images: TestImages
) -> None:
    version = owner.wait_inspected(busybox.image, busybox.version)
    stored = stored_sizes(token_registry, owner.name, busybox.image, busybox.version)

    assert version["source"] == "internal"
    assert version["status"] == "available"
    assert version["status_reason"] is None
    assert version["digest"] == stored.digest
    assert version["media_type"] == OCI_MANIFEST
    assert version["platforms"] == [f"linux/{native_architecture()}"]
    assert version["has_amd64"] is (native_architecture() == "amd64")
    assert version["external_reference"] is None
    assert version["upstream"] is None
    # Sizes: config + layers as stored, and config + layers decompressed; the busybox layer
    # holds the test image's tar whatever compression podman chose on push.
    assert version["compressed_size"] == stored.compressed
    assert version["uncompressed_size"] == stored.uncompressed
    layer_tar = len(gzip.decompress(test_images.blob(test_images.image.layer.digest)))
    assert stored.uncompressed == layer_tar + test_images.image.config.size
    assert stored.config_digest == test_images.image.config.digest
    assert version["checked_at"] is not None
    assert (version["created_by"], version["kind"], "access" in version) == (owner.name, "tool", False)
    if native_architecture() == "amd64":
        assert version["warnings"] == []

    listed = owner.images(workspace=owner.name, source="internal", q="tool")
    assert listed["total"] == 1
    (image,) = listed["items"]
    assert (image["name"], image["workspace"], image["source"]) == (busybox.image, owner.name, "internal")
    assert [v["version"] for v in image["versions"]] == ["v1"]
    assert (image["created_by"], image["updated_by"], image["built_by"]) == (owner.name,) * 3
    assert image["built_at"] is not None
    assert image["built_at"] >= image["created_at"]

    history = [(e["kind"], e["actor"], e["version"], e["detail"]) for e in owner.events(busybox.image)]
    assert history == [
        ("created", owner.name, None, {"source": "internal", "visibility": "private"}),
        ("pushed", owner.name, "v1", {"digest": stored.digest}),
        ("inspected", "system", "v1", {"status": "available", "reason": None}),
    ]


def test_resolve_gives_a_pinned_reference_that_podman_pulls(
    token_registry: RunningRegistry, owner: CatalogUser, busybox: Pushed, podman: Podman
) -> None:
    version = owner.wait_inspected(busybox.image, busybox.version)

    pinned = owner.resolve(busybox.image, busybox.version)

    reference = f"{token_registry.host}/{busybox.image}@{version['digest']}"
    assert pinned == {
        "image": busybox.image,
        "version": "v1",
        "digest": version["digest"],
        "reference": reference,
        "source": "internal",
    }
    # A fresh podman (empty storage) signs in and pulls exactly that, then runs it.
    assert "Login Succeeded" in containers_login(podman, token_registry.host, owner.name, PASSWORD).stdout
    image_id = podman.pull(reference)
    stored = stored_sizes(token_registry, owner.name, busybox.image, busybox.version)
    assert f"sha256:{image_id}" == stored.config_digest
    assert podman.run(image_id, "cat", HELLO_PATH) == HELLO_TEXT


def test_internal_versions_are_not_verified_through_the_catalog(owner: CatalogUser, busybox: Pushed) -> None:
    """(Deleting them through the catalog is tested in test_delete.py.)"""
    owner.wait_inspected(busybox.image, busybox.version)
    verify = owner.http.post(f"/images/{busybox.image}/versions/v1/verify")
    assert (
        problem(verify, 409) == "only external versions are verified; internal ones are checked when pushed"
    )
    assert owner.version(busybox.image, "v1")["status"] == "available"


def test_re_pushing_a_tag_updates_the_version(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    test_images: TestImages,
    layouts: UpstreamImages,
    skopeo_in: Skopeo,
) -> None:
    image = f"{owner.name}/retag"
    dest = f"{token_registry.host}/{image}:v1"
    skopeo_in.copy(test_images.image_ref, f"docker://{dest}", extra=["--preserve-digests"])
    first = owner.wait_inspected(image, "v1", test_images.image.manifest.digest)
    assert first["compressed_size"] == test_images.image.config.size + test_images.image.layer.size

    # The same tag, another image: the version follows the tag.
    _copy(skopeo_in, layouts, "amd64", dest)
    second = owner.wait_inspected(image, "v1", layouts.amd64.manifest.digest)

    assert second["status"] == "available"
    assert second["platforms"] == ["linux/amd64"]
    assert second["compressed_size"] == layouts.amd64.compressed_size
    stored = stored_sizes(token_registry, owner.name, image, "v1")
    assert second["uncompressed_size"] == stored.uncompressed
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]
    assert [v["version"] for v in owner.image(image)["versions"]] == ["v1"]
    pushes = [(e["kind"], e["detail"].get("digest")) for e in owner.events(image) if e["kind"] != "inspected"]
    assert pushes == [
        ("created", None),
        ("pushed", test_images.image.manifest.digest),
        ("pushed", layouts.amd64.manifest.digest),
    ]
    assert owner.resolve(image, "v1")["digest"] == layouts.amd64.manifest.digest


def test_deleting_a_tag_in_the_registry_removes_the_version(
    token_registry: RunningRegistry, owner: CatalogUser, layouts: UpstreamImages, skopeo_in: Skopeo
) -> None:
    image = f"{owner.name}/doomed"
    for tag in ("v1", "v2"):
        _copy(skopeo_in, layouts, "amd64", f"{token_registry.host}/{image}:{tag}")
    for tag in ("v1", "v2"):
        owner.wait_inspected(image, tag)

    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        assert oci.delete_manifest(image, "v1").status_code == 202  # the tag only

    assert (
        problem(owner.http.get(f"/images/{image}/versions/v1"), 404) == f"image {image!r} has no version 'v1'"
    )
    assert [v["version"] for v in owner.image(image)["versions"]] == ["v2"]
    runnable = [(r["image"], r["version"]) for r in owner.runnable(workspace=owner.name)]
    assert (image, "v2") in runnable
    assert (image, "v1") not in runnable
    # skopeo delete removes the manifest (by digest): every version on it goes.
    skopeo_in.delete(f"docker://{token_registry.host}/{image}:v2")
    assert owner.image(image)["versions"] == []
    assert problem(owner.http.get(f"/images/{image}/versions/v2/resolve"), 404) == (
        f"image {image!r} has no version 'v2'"
    )
    deleted = [(e["actor"], e["version"]) for e in owner.events(image) if e["kind"] == "version.deleted"]
    assert deleted == [(owner.name, "v1"), (owner.name, "v2")]


# --------------------------------------------------------------------------- platforms and linux/amd64


def test_an_arm64_only_push_is_flagged(
    token_registry: RunningRegistry, owner: CatalogUser, layouts: UpstreamImages, skopeo_in: Skopeo
) -> None:
    image = f"{owner.name}/armonly"
    _copy(skopeo_in, layouts, "arm64", f"{token_registry.host}/{image}:v1")

    version = owner.wait_inspected(image, "v1")

    assert version["status"] == "available"  # no policy in this workspace: flagged, not refused
    assert version["digest"] == layouts.arm64.manifest.digest
    assert version["platforms"] == ["linux/arm64/v8"]
    assert version["has_amd64"] is False
    assert warning_codes(version) == ["no_amd64"]
    assert AMD64_ADVICE in warning(version, "no_amd64")
    assert version["compressed_size"] == layouts.arm64.compressed_size
    layers = sum(len(layouts.blobs[layer.digest]) for layer in layouts.arm64.layers)
    assert layers == sum(layer.size for layer in layouts.arm64.layers)
    unpacked = sum(len(gzip.decompress(layouts.blobs[layer.digest])) for layer in layouts.arm64.layers)
    assert version["uncompressed_size"] == unpacked + layouts.arm64.config.size


def test_a_multi_platform_push_lists_every_platform(
    token_registry: RunningRegistry, owner: CatalogUser, layouts: UpstreamImages, skopeo_in: Skopeo
) -> None:
    image = f"{owner.name}/multi"
    _copy(skopeo_in, layouts, "multi", f"{token_registry.host}/{image}:v1")

    version = owner.wait_inspected(image, "v1")

    assert version["status"] == "available"
    assert (version["digest"], version["media_type"]) == (layouts.index.digest, OCI_INDEX)
    assert version["platforms"] == ["linux/amd64", "linux/arm64/v8"]  # not the attestation's unknown/unknown
    assert version["has_amd64"] is True
    assert version["warnings"] == []
    # Stored for the version: both platforms' configs and layers.
    assert version["compressed_size"] == layouts.amd64.compressed_size + layouts.arm64.compressed_size
    assert owner.resolve(image, "v1")["reference"] == f"{token_registry.host}/{image}@{layouts.index.digest}"


def denied(result: Result) -> str:
    """What skopeo printed for a push the registry refused with DENIED (403)."""
    assert not result.ok, result.stdout
    assert "denied: " in result.stderr, result.stderr
    return result.stderr


def test_a_workspace_requiring_amd64_refuses_an_arm64_only_push_with_the_reason(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    test_images: TestImages,
    layouts: UpstreamImages,
    skopeo_in: Skopeo,
) -> None:
    workspace = owner.new_workspace("amd64-only")
    owner.set_policy(workspace, True)

    refused = _copy(skopeo_in, layouts, "arm64", f"{token_registry.host}/{workspace}/armonly:v1", check=False)

    message = denied(refused)
    assert (
        f"the workspace '{workspace}' requires linux/amd64: this image has no linux/amd64 platform" in message
    )
    assert AMD64_ADVICE in message
    # Nothing was stored under the tag, and the catalog has nothing to run.
    assert (
        problem(owner.http.get(f"/images/{workspace}/armonly"), 404)
        == f"image '{workspace}/armonly' not found"
    )
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        assert oci.get_manifest(f"{workspace}/armonly", "v1").status_code == 404
        # Over the Distribution API (skopeo sent the blobs before): the spec's DENIED, with the reason.
        wire = oci.http.put(
            f"/v2/{workspace}/armonly/manifests/v1",
            content=layouts.blobs[layouts.arm64.manifest.digest],
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert wire.status_code == 403, wire.text
        (error,) = wire.json()["errors"]
        assert error["code"] == "DENIED"
        assert error["message"].startswith(f"the workspace '{workspace}' requires linux/amd64")
        # Artifacts (an SBOM here) are no images: tagged, they are admitted.
        sbom = oci_manifest(
            Blob(b"{}", OCI_EMPTY), [Blob(b'{"spdxVersion":"SPDX-2.3"}', SPDX)], artifact_type=SPDX
        )
        oci.push(f"{workspace}/armonly", sbom, "sbom")
    assert owner.runnable(workspace=workspace) == []

    # The index with linux/amd64 is accepted in the same workspace (its arm64 child, pushed
    # by digest before it, is no version of its own), and so is the amd64 image.
    _copy(skopeo_in, layouts, "multi", f"{token_registry.host}/{workspace}/multi:v1")
    assert owner.wait_inspected(f"{workspace}/multi", "v1")["status"] == "available"
    _copy(skopeo_in, layouts, "amd64", f"{token_registry.host}/{workspace}/amd:v1")
    assert owner.wait_inspected(f"{workspace}/amd", "v1")["status"] == "available"
    assert [(r["image"], r["status"]) for r in owner.runnable(workspace=workspace)] == [
        (f"{workspace}/amd", "available"),
        (f"{workspace}/multi", "available"),
    ]


def test_versions_without_amd64_are_not_resolved_once_the_workspace_requires_it(
    token_registry: RunningRegistry, owner: CatalogUser, layouts: UpstreamImages, skopeo_in: Skopeo
) -> None:
    workspace = owner.new_workspace("strict-later")
    image = f"{workspace}/armonly"
    _copy(skopeo_in, layouts, "arm64", f"{token_registry.host}/{image}:v1")
    assert owner.wait_inspected(image, "v1")["status"] == "available"  # no policy yet
    assert owner.resolve(image, "v1")["digest"] == layouts.arm64.manifest.digest

    owner.set_policy(workspace, True)

    detail = problem(owner.http.get(f"/images/{image}/versions/v1/resolve"), 409)
    assert detail.startswith(
        f"{image}:v1 cannot be run: the workspace '{workspace}' requires linux/amd64 and this version "
        "has linux/arm64/v8"
    )
    assert AMD64_ADVICE in detail
    assert owner.runnable(workspace=workspace) == []
    assert owner.version(image, "v1")["status"] == "available"  # listed, with its warning

    owner.set_policy(workspace, False)
    assert owner.resolve(image, "v1")["digest"] == layouts.arm64.manifest.digest
    assert [r["image"] for r in owner.runnable(workspace=workspace)] == [image]


# --------------------------------------------------------------------------- external versions


def test_signature_and_referrer_tags_are_not_catalog_versions(
    token_registry: RunningRegistry, owner: CatalogUser
) -> None:
    """cosign pushes ``sha256-<digest>.sig`` (and ``.att``, ``.sbom``); the OCI referrers
    fallback tags ``sha256-<digest>``. The registry serves them; the catalog lists the image's
    real versions only."""
    workspace = owner.new_workspace("signed")
    image = f"{workspace}/app"
    # As cosign writes one: an image config and the signed payload as the one layer.
    payload = Blob(b'{"critical":{}}', "application/vnd.dev.cosign.simplesigning.v1+json")
    signature = oci_manifest(layers=[payload])
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        pushed = oci.push(image, oci_manifest(), "v1")
        assert pushed.status_code == 201
        tag = "sha256-" + pushed.headers["docker-content-digest"].removeprefix("sha256:")
        names = [tag + suffix for suffix in (".sig", ".att", ".sbom", "")]
        for name in names:
            assert oci.push(image, signature, name).status_code == 201
        # "sha256-" and a digest that is not one, or a suffix cosign does not use: a tag like any.
        assert oci.push(image, signature, "sha256-latest").status_code == 201
        assert oci.push(image, signature, tag + ".sig2").status_code == 201
        for name in names:
            assert oci.get_manifest(image, name).status_code == 200
    assert sorted(v["version"] for v in owner.image(image)["versions"]) == sorted(
        ["sha256-latest", tag + ".sig2", "v1"]
    )
    assert {e["version"] for e in owner.events(image) if e["kind"] == "pushed"} == {
        "v1",
        "sha256-latest",
        tag + ".sig2",
    }


def test_a_tag_push_does_not_replace_an_external_version(
    token_registry: RunningRegistry, owner: CatalogUser, layouts: UpstreamImages, skopeo_in: Skopeo
) -> None:
    workspace = owner.new_workspace("ext-push")
    external = owner.register(workspace, "docker.io/alpine:latest")
    image = external["image"]
    assert (image, external["version"]) == (f"{workspace}/alpine", "latest")

    refused = _copy(skopeo_in, layouts, "amd64", f"{token_registry.host}/{image}:latest", check=False)

    message = denied(refused)
    assert "docker.io/library/alpine:latest" in message
    assert "Push another tag, or remove the external version first" in message
    kept = owner.version(image, "latest")
    assert (kept["source"], kept["external_reference"]) == ("external", "docker.io/library/alpine:latest")
    assert [e["kind"] for e in owner.events(image)] == ["created", "version.added"]
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        assert oci.get_manifest(image, "latest").status_code == 404

    # Another tag is pushed beside it.
    _copy(skopeo_in, layouts, "amd64", f"{token_registry.host}/{image}:v2")
    assert owner.wait_inspected(image, "v2")["status"] == "available"
    assert owner.image(image)["source"] == "mixed"

    # Once the external version is removed (a maintainer's step), the tag can be pushed.
    assert owner.http.delete(f"/images/{image}/versions/latest").status_code == 204
    _copy(skopeo_in, layouts, "amd64", f"{token_registry.host}/{image}:latest")
    pushed = owner.wait_inspected(image, "latest")
    assert (pushed["source"], pushed["external_reference"]) == ("internal", None)
