"""External images in the catalog ("Create > External image"), over HTTP as users see them.

A user registers an image by reference (every URL form the issue lists; bad ones refused
with the fix), adds versions, and verifies them against local upstream registries: Debian's
``docker-registry``, open and behind htpasswd, on loopback (there is no internet; loopback
upstreams are spoken to over plain HTTP). Verification records the digest, platforms and
size, or why it failed; resolving an unverified version verifies it on use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.catalog import (
    AMD64_ADVICE,
    NOT_COPIED,
    UPSTREAM_SECRET,
    UPSTREAM_USER,
    CatalogUser,
    Upstreams,
    new_user,
    problem,
    start_upstreams,
    warning,
    warning_codes,
)
from tests.support.clients import Skopeo
from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.support.upstreams import build_upstream_images, closed_port

pytestmark = pytest.mark.clients

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    images = build_upstream_images(tmp_path_factory.mktemp("catalog-upstream-images"))
    with start_upstreams(tmp_path_factory.mktemp("catalog-upstreams"), images) as found:
        yield found


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture
def user(token_registry: RunningRegistry, admin: Api) -> Iterator[CatalogUser]:
    """A fresh user; their personal workspace (named after them) is where they register."""
    with CatalogUser.connect(token_registry, new_user(admin, "cat")) as found:
        yield found


# --------------------------------------------------------------------------- registering by reference


FORMS = {
    # reference: (name, version, external_reference, registry, repository, provider, ecr id, ecr region)
    "docker.io/alpine:latest": (
        "alpine", "latest", "docker.io/library/alpine:latest",
        "docker.io", "library/alpine", "dockerhub", None, None,
    ),
    "registry.hub.docker.com/library/alpine:latest": (
        "alpine", "latest", "docker.io/library/alpine:latest",
        "docker.io", "library/alpine", "dockerhub", None, None,
    ),
    "alpine": (
        "alpine", "latest", "docker.io/library/alpine:latest",
        "docker.io", "library/alpine", "dockerhub", None, None,
    ),
    "quay.io/biocontainers/samtools:1.19--h50ea8bc_0": (
        "samtools", "1.19--h50ea8bc_0", "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        "quay.io", "biocontainers/samtools", "quay", None, None,
    ),
    f"ghcr.io/org/tool@{DIGEST}": (
        "tool", f"sha256-{DIGEST[7:19]}", f"ghcr.io/org/tool@{DIGEST}",
        "ghcr.io", "org/tool", "ghcr", None, None,
    ),
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/ns/name:tag": (
        "name", "tag", "123456789012.dkr.ecr.us-west-2.amazonaws.com/ns/name:tag",
        "123456789012.dkr.ecr.us-west-2.amazonaws.com", "ns/name", "ecr", "123456789012", "us-west-2",
    ),
    "nvcr.io/nvidia/pytorch:24.01-py3": (
        "pytorch", "24.01-py3", "nvcr.io/nvidia/pytorch:24.01-py3",
        "nvcr.io", "nvidia/pytorch", "nvcr", None, None,
    ),
}  # fmt: skip


@pytest.mark.parametrize("reference", list(FORMS))
def test_every_reference_form_is_registered_with_name_and_version_filled_in(
    user: CatalogUser, reference: str
) -> None:
    name, version, canonical, registry, repository, provider, ecr_id, ecr_region = FORMS[reference]
    workspace = user.new_workspace("forms")  # the same short name (alpine) comes from several forms

    created = user.register(workspace, reference)

    assert created["image"] == f"{workspace}/{name}"
    assert created["version"] == version
    assert created["source"] == "external"
    assert created["status"] == "unverified"
    assert created["status_reason"] is None
    assert created["checked_at"] is None
    assert created["external_reference"] == canonical
    assert created["upstream"] == {
        "registry": registry,
        "repository": repository,
        "provider": provider,
        "ecr_account_id": ecr_id,
        "ecr_region": ecr_region,
    }
    # Nothing is known about the image until it is verified, except a digest given in the reference.
    assert created["digest"] == (DIGEST if "@" in reference else None)
    assert created["platforms"] == []
    assert created["has_amd64"] is None
    assert created["compressed_size"] is None
    assert created["created_by"] == user.name
    moving = version == "latest"
    assert warning_codes(created) == (["moving_tag", "not_copied"] if moving else ["not_copied"])
    assert NOT_COPIED in warning(created, "not_copied")
    if moving:
        assert warning(created, "moving_tag").endswith(
            "moves: pin the digest (docker.io/library/alpine@sha256:...) to keep this version reproducible"
        )
    if reference == "alpine":
        assert warning(created, "moving_tag").startswith("no tag given, so tag 'latest' is used")

    # What was answered is what is stored: the image and the version read back the same.
    assert user.version(created["image"], version) == created
    image = user.image(created["image"])
    assert (image["workspace"], image["source"], image["created_by"]) == (workspace, "external", user.name)
    assert [v["version"] for v in image["versions"]] == [version]
    history = [(e["kind"], e["actor"], e["version"]) for e in user.events(created["image"])]
    assert history == [("created", user.name, None), ("version.added", user.name, version)]
    assert user.images(workspace=workspace, source="external")["total"] == 1


@pytest.mark.parametrize(
    ("reference", "fix"),
    [
        (
            "https://quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
            "'https://' is not part of an image reference: drop the scheme: "
            "use quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        ),
        (
            "http://docker.io/library/alpine:3.20",
            "'http://' is not part of an image reference: drop the scheme: use docker.io/library/alpine:3.20",
        ),
        (
            "quay.io/BioContainers/Samtools:1.19--h50ea8bc_0",
            "repository names are lowercase: use quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        ),
        ("Alpine:3.20", "repository names are lowercase: use alpine:3.20"),
        ("alpine@3.20", "for a tag use ':': use alpine:3.20"),
        ("alpine:", "drop the ':' (alpine)"),
        ("docker pull alpine:3.20", "give only the image, not the 'docker pull' command: use alpine:3.20"),
        ("hub.docker.com/_/alpine", "the Docker Hub website, not a registry: use docker.io/library/alpine"),
        (
            "12345678901.dkr.ecr.us-west-2.amazonaws.com/ns/name:tag",
            "use <12-digit account id>.dkr.ecr.<region>.amazonaws.com",
        ),
        ("ghcr.io/org/tool@sha256:abc", "expected sha256:<64 lowercase hex characters>"),
        ("quay.io//samtools:1.19", "use quay.io/samtools:1.19"),
    ],
    ids=[
        "https", "http", "uppercase-path", "uppercase-hub", "at-for-tag", "empty-tag", "pull-command",
        "hub-website", "ecr-account", "short-digest", "double-slash",
    ],
)  # fmt: skip
def test_a_bad_reference_is_refused_with_the_fix(user: CatalogUser, reference: str, fix: str) -> None:
    response = user.http.post("/images", json={"workspace": user.name, "reference": reference})

    assert fix in problem(response, 422)
    assert user.images(workspace=user.name)["total"] == 0


def test_a_duplicate_image_name_is_refused_and_versions_are_added_to_the_image(user: CatalogUser) -> None:
    workspace = user.name
    first = user.register(workspace, "alpine:3.20")
    image = first["image"]
    assert image == f"{workspace}/alpine"

    # Another reference with the same short name: refused, saying what to do instead.
    detail = problem(
        user.http.post("/images", json={"workspace": workspace, "reference": "alpine:3.19"}), 409
    )
    assert detail == (
        f"an image named '{image}' already exists; image names are unique across Dockyard. "
        f"Choose another name, or add a version to it (POST /api/v1/images/{image}/versions)"
    )
    # Both ways out work: another name, or a version of the existing image.
    assert user.register(workspace, "alpine:3.19", name="alpine-old")["image"] == f"{workspace}/alpine-old"
    added = user.add_version(image, "alpine:3.19")
    assert (added["image"], added["version"], added["external_reference"]) == (
        image, "3.19", "docker.io/library/alpine:3.19",
    )  # fmt: skip
    pinned = user.add_version(image, f"docker.io/library/alpine@{DIGEST}", version="pinned", type="bench")
    assert (pinned["version"], pinned["digest"], pinned["kind"]) == ("pinned", DIGEST, "bench")
    assert warning_codes(pinned) == ["not_copied"]  # a digest does not move

    detail = problem(user.http.post(f"/images/{image}/versions", json={"reference": "alpine:3.19"}), 409)
    assert detail == f"image '{image}' already has a version '3.19'; choose another version name"
    missing = user.http.post(f"/images/{workspace}/nothing/versions", json={"reference": "alpine:3.19"})
    assert problem(missing, 404) == f"image '{workspace}/nothing' not found"

    assert [v["version"] for v in user.image(image)["versions"]] == ["3.20", "3.19", "pinned"]
    assert [(e["kind"], e["version"]) for e in user.events(image)] == [
        ("created", None),
        ("version.added", "3.20"),
        ("version.added", "3.19"),
        ("version.added", "pinned"),
    ]


def test_only_developers_of_the_workspace_register_images(
    token_registry: RunningRegistry, admin: Api, user: CatalogUser
) -> None:
    workspace = user.new_workspace("team")
    reader, outsider = new_user(admin, "reader"), new_user(admin, "outsider")
    user.api.set_member(workspace, reader, "reader")
    body = {"workspace": workspace, "reference": "alpine:3.20"}
    for who in (reader, outsider):
        with CatalogUser.connect(token_registry, who) as other:
            response = other.http.post("/images", json=body)
            assert (
                problem(response, 403)
                == f"this needs the developer role (or higher) in workspace '{workspace}'"
            )
    anonymous = httpx.post(f"{token_registry.url}/api/v1/images", json=body, timeout=30)
    assert problem(anonymous, 401) == "sign in first"
    assert user.images(workspace=workspace)["total"] == 0
    unknown = user.http.post("/images", json={"workspace": "no-such-workspace-x", "reference": "alpine"})
    assert unknown.status_code == 404, unknown.text


# --------------------------------------------------------------------------- verification upstream


def test_verifying_an_index_records_digest_platforms_and_size(
    user: CatalogUser, upstreams: Upstreams
) -> None:
    images = upstreams.images
    created = user.register(user.name, upstreams.ref("library/multi:v1"))
    assert created["image"] == f"{user.name}/multi"
    assert created["upstream"]["provider"] == "generic"

    checked = user.verify(created["image"], "v1")

    assert checked["status"] == "reachable"
    assert checked["status_reason"] is None
    assert checked["checked_at"] >= checked["created_at"]
    assert checked["digest"] == images.index.digest
    assert checked["media_type"] == OCI_INDEX
    # The attestation entry (unknown/unknown) is not a platform.
    assert checked["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert checked["has_amd64"] is True
    assert checked["compressed_size"] == images.amd64.compressed_size  # what an amd64 node downloads
    # The moving-tag warning now names the digest to pin.
    assert f"pin the digest ({upstreams.ref('library/multi')}@{images.index.digest})" in warning(
        checked, "moving_tag"
    )
    assert warning_codes(checked) == ["moving_tag", "not_copied"]
    assert user.version(created["image"], "v1") == checked
    last = user.events(created["image"])[-1]
    assert (last["kind"], last["actor"], last["version"], last["detail"]) == (
        "verified", user.name, "v1", {"status": "reachable", "reason": None},
    )  # fmt: skip


def test_verifying_a_single_image_by_digest_records_it(user: CatalogUser, upstreams: Upstreams) -> None:
    amd64 = upstreams.images.amd64
    reference = upstreams.ref(f"library/amd@{amd64.manifest.digest}")
    created = user.register(user.name, reference)
    version = f"sha256-{amd64.manifest.digest[7:19]}"
    assert (created["version"], created["digest"]) == (version, amd64.manifest.digest)

    checked = user.verify(created["image"], version)

    assert checked["status"] == "reachable"
    assert checked["media_type"] == OCI_MANIFEST
    assert checked["platforms"] == ["linux/amd64"]
    assert checked["has_amd64"] is True
    assert checked["compressed_size"] == amd64.compressed_size
    assert warning_codes(checked) == ["not_copied"]


def test_a_pinned_digest_missing_upstream_is_explained(user: CatalogUser, upstreams: Upstreams) -> None:
    created = user.register(user.name, upstreams.ref(f"library/amd@{DIGEST}"))

    checked = user.verify(created["image"], created["version"])

    assert checked["status"] == "unreachable"
    assert checked["status_reason"] == (
        f"not_found: manifest {DIGEST} not found in {upstreams.ref('library/amd')}"
    )


def test_a_private_upstream_answering_401_is_explained_and_stored_credentials_verify_it(
    user: CatalogUser, upstreams: Upstreams
) -> None:
    host = upstreams.private.host
    created = user.register(user.name, f"{host}/team/secret:v1")
    image = created["image"]

    checked = user.verify(image, "v1")

    assert checked["status"] == "unreachable"
    assert checked["status_reason"] == (
        f"unauthorized: the upstream registry refused anonymous access to {host}/team/secret: the image is "
        f"private (or does not exist); add credentials for {host} or ask its owner for access"
    )
    assert checked["checked_at"] is not None
    assert (checked["digest"], checked["platforms"], checked["has_amd64"]) == (None, [], None)

    # The workspace keeps credentials for that registry (never shown again); verification uses them.
    kept = user.api.call(
        "PUT",
        f"/workspaces/{user.name}/upstream-credentials",
        json={"registry": host, "username": UPSTREAM_USER, "secret": UPSTREAM_SECRET},
    )
    assert (kept["registry"], kept["username"]) == (host, UPSTREAM_USER)
    assert UPSTREAM_SECRET not in user.http.get(f"/workspaces/{user.name}/upstream-credentials").text

    checked = user.verify(image, "v1")

    assert checked["status"] == "reachable", checked["status_reason"]
    assert checked["digest"] == upstreams.images.amd64.manifest.digest
    assert checked["platforms"] == ["linux/amd64"]
    assert [(e["kind"], e["detail"]["status"]) for e in user.events(image) if e["kind"] == "verified"] == [
        ("verified", "unreachable"),
        ("verified", "reachable"),
    ]


def test_a_missing_tag_answering_404_is_explained(user: CatalogUser, upstreams: Upstreams) -> None:
    created = user.register(user.name, upstreams.ref("library/multi:nope"))

    checked = user.verify(created["image"], "nope")

    assert checked["status"] == "unreachable"
    assert checked["status_reason"] == f"not_found: tag nope not found in {upstreams.ref('library/multi')}"
    assert checked["digest"] is None


def test_a_closed_port_is_unreachable(user: CatalogUser) -> None:
    host = f"127.0.0.1:{closed_port()}"
    created = user.register(user.name, f"{host}/tools/gone:1.0")

    checked = user.verify(created["image"], "1.0")

    assert checked["status"] == "unreachable"
    assert checked["status_reason"].startswith(
        f"unreachable: could not reach {host}: the connection was refused"
    ), checked["status_reason"]


def test_resolving_an_unverified_version_verifies_it_and_pins_the_digest(
    user: CatalogUser, upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory
) -> None:
    digest = upstreams.images.index.digest
    created = user.register(user.name, upstreams.ref("library/multi:v1"))
    assert created["status"] == "unverified"

    pinned = user.resolve(created["image"], "v1")

    assert pinned == {
        "image": created["image"],
        "version": "v1",
        "digest": digest,
        "reference": upstreams.ref(f"library/multi@{digest}"),
        "source": "external",
    }
    after = user.version(created["image"], "v1")
    assert (after["status"], after["digest"]) == ("reachable", digest)
    assert after["checked_at"] is not None
    assert "verified" in [e["kind"] for e in user.events(created["image"])]
    # The pinned reference is what a client pulls: skopeo copies exactly that index, every platform.
    workdir = tmp_path_factory.mktemp("skopeo-resolve")
    Skopeo(workdir).copy(
        f"docker://{pinned['reference']}",
        f"oci:{workdir / 'pulled'}:v1",
        all_images=True,
        extra=["--preserve-digests"],
    )
    layout = json.loads((workdir / "pulled" / "index.json").read_text())
    assert [m["digest"] for m in layout["manifests"]] == [digest]
    assert (workdir / "pulled" / "blobs" / "sha256" / upstreams.images.arm64.manifest.digest[7:]).is_file()


def test_resolving_a_version_that_fails_verification_is_refused_with_the_reason(
    user: CatalogUser, upstreams: Upstreams
) -> None:
    created = user.register(user.name, upstreams.ref("library/multi:nope"))

    response = user.http.get(f"/images/{created['image']}/versions/nope/resolve")

    assert problem(response, 409) == (
        f"{created['image']}:nope cannot be run: unreachable "
        f"(not_found: tag nope not found in {upstreams.ref('library/multi')})"
    )
    assert user.version(created["image"], "nope")["status"] == "unreachable"


# --------------------------------------------------------------------------- linux/amd64


def test_an_arm64_only_external_image_is_flagged(user: CatalogUser, upstreams: Upstreams) -> None:
    created = user.register(user.name, upstreams.ref("library/arm:v1"))

    checked = user.verify(created["image"], "v1")

    assert checked["status"] == "reachable"
    assert checked["digest"] == upstreams.images.arm64.manifest.digest
    assert checked["platforms"] == ["linux/arm64/v8"]
    assert checked["has_amd64"] is False
    assert warning_codes(checked) == ["moving_tag", "not_copied", "no_amd64"]
    advice = warning(checked, "no_amd64")
    assert advice.startswith("this image has no linux/amd64 platform")
    assert AMD64_ADVICE in advice
    # Still runnable where the workspace allows it, listed with its platform.
    runnable = user.runnable(workspace=user.name, platform="linux/arm64/v8")
    assert [(r["image"], r["version"]) for r in runnable] == [(created["image"], "v1")]
    assert user.runnable(workspace=user.name, platform="linux/amd64") == []


def test_an_arm64_only_external_image_records_its_size(user: CatalogUser, upstreams: Upstreams) -> None:
    created = user.register(user.name, upstreams.ref("library/arm:v1"))

    checked = user.verify(created["image"], "v1")

    assert checked["compressed_size"] == upstreams.images.arm64.compressed_size


def test_a_workspace_requiring_amd64_refuses_arm64_only_external_images(
    token_registry: RunningRegistry, admin: Api, user: CatalogUser, upstreams: Upstreams
) -> None:
    workspace = user.new_workspace("amd64-only")
    developer = new_user(admin, "dev")
    user.api.set_member(workspace, developer, "developer")
    assert user.api.call("GET", f"/workspaces/{workspace}/catalog-policy") == {"require_amd64": False}
    with CatalogUser.connect(token_registry, developer) as dev:
        refused = dev.http.put(f"/workspaces/{workspace}/catalog-policy", json={"require_amd64": True})
        assert "owner" in problem(refused, 403)
    user.set_policy(workspace, True)
    assert user.api.call("GET", f"/workspaces/{workspace}/catalog-policy") == {"require_amd64": True}

    for who in (user.name, developer):
        with CatalogUser.connect(token_registry, who) as registrant:
            response = registrant.http.post(
                "/images", json={"workspace": workspace, "reference": upstreams.ref("library/arm:v1")}
            )
            detail = problem(response, 422)
            assert detail.startswith(
                "refused by the workspace policy: this image has no linux/amd64 platform"
            )
            assert AMD64_ADVICE in detail
            # Nothing is left behind: no image, no version.
            assert user.images(workspace=workspace)["total"] == 0
            assert user.http.get(f"/images/{workspace}/arm").status_code == 404

    # A multi-platform image with linux/amd64 is verified at registration and accepted.
    with CatalogUser.connect(token_registry, developer) as dev:
        accepted = dev.register(workspace, upstreams.ref("library/multi:v1"))
        assert (accepted["status"], accepted["has_amd64"]) == ("reachable", True)
        # An arm64-only version of an existing image is refused too; the image keeps its versions.
        response = dev.http.post(
            f"/images/{accepted['image']}/versions",
            json={"reference": upstreams.ref("library/arm:v1"), "version": "arm"},
        )
        assert AMD64_ADVICE in problem(response, 422)
        assert [v["version"] for v in dev.image(accepted["image"])["versions"]] == ["v1"]
        last = dev.events(accepted["image"])[-1]
        assert (last["kind"], last["actor"], last["version"]) == ("version.refused", developer, "arm")

    # Without the policy the same registration is accepted (and flagged).
    user.set_policy(workspace, False)
    flagged = user.register(workspace, upstreams.ref("library/arm:v1"))
    assert (flagged["image"], flagged["status"], flagged["has_amd64"]) == (
        f"{workspace}/arm",
        "unverified",
        None,
    )
