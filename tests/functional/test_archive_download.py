"""Downloading image versions as tars (issue #5), as users do it: over /api/v1 with their
credentials, then ``docker load`` (a private dockerd), ``podman load`` and ``skopeo copy``.

Images are pushed by skopeo, signed in as their owner, byte for byte from the test layout
(the runnable busybox image, and an index over it and an arm64 variant); versions are
used once the catalog has inspected them (``available``). The loaded images are run
(``cat`` of a file the test image holds) and their layers compared with the config's
diff_ids. Refusals are checked by status and by the reason they give.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.catalog import CatalogUser, new_user, problem
from tests.support.clients import DockerDaemon, Podman, Skopeo, containers_login, docker_as
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.images import HELLO_PATH, HELLO_TEXT, BuiltImage, TestImages
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients

TAR = "application/x-tar"
Json = dict[str, Any]


@dataclass(frozen=True)
class Pushed:
    image: str  # the catalog image (= the repository)
    version: str
    digest: str

    @property
    def archive(self) -> str:
        return f"/images/{self.image}/versions/{self.version}/archive"

    def reference(self, registry: RunningRegistry) -> str:
        return f"{registry.host}/{self.image}:{self.version}"


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture(scope="module")
def owner(token_registry: RunningRegistry, admin: Api) -> Iterator[CatalogUser]:
    """The module's user: pushes to their personal workspace (named after them) and downloads."""
    with CatalogUser.connect(token_registry, new_user(admin, "downloader")) as user:
        yield user


def _skopeo_as(registry: RunningRegistry, user: str, folder: Path) -> Skopeo:
    skopeo = Skopeo(folder)
    assert "Login Succeeded" in containers_login(skopeo, registry.host, user, PASSWORD).stdout
    return skopeo


@pytest.fixture(scope="module")
def owner_skopeo(
    token_registry: RunningRegistry, owner: CatalogUser, tmp_path_factory: pytest.TempPathFactory
) -> Skopeo:
    return _skopeo_as(token_registry, owner.name, tmp_path_factory.mktemp("download-skopeo"))


def push(
    registry: RunningRegistry,
    user: CatalogUser,
    skopeo: Skopeo,
    source: str,
    image: str,
    version: str = "v1",
    *,
    all_images: bool = False,
    extra: tuple[str, ...] = (),
    expect: str = "available",
) -> Pushed:
    """Copy a layout image to Dockyard byte for byte and wait for the catalog's inspection."""
    skopeo.copy(
        source,
        f"docker://{registry.host}/{image}:{version}",
        all_images=all_images,
        extra=["--preserve-digests", *extra],
    )
    digest = hashlib.sha256(skopeo.inspect_raw(f"docker://{registry.host}/{image}:{version}")).hexdigest()
    found = user.wait_inspected(image, version, f"sha256:{digest}")
    assert found["status"] == expect, found
    return Pushed(image, version, f"sha256:{digest}")


@pytest.fixture(scope="module")
def busybox(
    token_registry: RunningRegistry, owner: CatalogUser, owner_skopeo: Skopeo, test_images: TestImages
) -> Pushed:
    """The runnable single-platform image, ``<owner>/busybox:v1``."""
    return push(token_registry, owner, owner_skopeo, test_images.image_ref, f"{owner.name}/busybox")


@pytest.fixture(scope="module")
def multi(
    token_registry: RunningRegistry, owner: CatalogUser, owner_skopeo: Skopeo, test_images: TestImages
) -> Pushed:
    """The 2-platform index (this machine's busybox + the other architecture's variant)."""
    return push(
        token_registry, owner, owner_skopeo, test_images.index_ref, f"{owner.name}/multi", all_images=True
    )


def fetch(http: httpx.Client, path: str, expect: int = 200, **params: str) -> httpx.Response:
    response = http.get(path, params=params)
    assert response.status_code == expect, f"{path}: {response.status_code} {response.text[:500]}"
    return response


def save(response: httpx.Response, path: Path) -> Path:
    path.write_bytes(response.content)
    return path


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        found = {}
        for info in tar.getmembers():
            extracted = tar.extractfile(info)
            assert extracted is not None, info.name
            found[info.name] = extracted.read()
    return found


def docker_manifest(archive: bytes) -> tuple[Json, Json]:
    """The single entry of a docker-archive's manifest.json, and the config it names."""
    files = members(archive)
    (entry,) = json.loads(files["manifest.json"])
    return entry, json.loads(files[entry["Config"]])


def oci_root(archive: bytes) -> Json:
    """The one descriptor in an OCI archive's index.json."""
    files = members(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (root,) = json.loads(files["index.json"])["manifests"]
    descriptor: Json = root
    return descriptor


def image_of(test_images: TestImages, architecture: str) -> BuiltImage:
    return next(i for i in (test_images.image, test_images.foreign) if i.architecture == architecture)


@contextlib.contextmanager
def loaded_in_docker(dockerd: DockerDaemon, config: Path, archive: Path, reference: str) -> Iterator[Json]:
    """``docker load`` the archive; yields ``docker image inspect`` of what it loaded, then removes it."""
    result = docker_as(dockerd, config, "load", "--input", str(archive))
    assert f"Loaded image: {reference}" in result.stdout, result.stdout
    try:
        (inspected,) = json.loads(docker_as(dockerd, config, "image", "inspect", reference).stdout)
        yield inspected
    finally:
        docker_as(dockerd, config, "rmi", "--force", reference, check=False)


# --------------------------------------------------------------------------- docker and podman load


def test_docker_load_runs_the_downloaded_image_with_its_layers(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    busybox: Pushed,
    dockerd: DockerDaemon,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    response = fetch(owner.http, busybox.archive)

    assert response.headers["content-type"] == TAR
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')
    assert f'filename="{owner.name}_busybox_v1.tar"' in response.headers["content-disposition"]
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["dockyard-image-digest"] == busybox.digest
    assert response.headers["dockyard-platform"] == f"linux/{test_images.image.architecture}"
    entry, config = docker_manifest(response.content)
    reference = busybox.reference(token_registry)
    assert entry["RepoTags"] == [reference]
    assert config["rootfs"]["diff_ids"] == [test_images.image.diff_id]

    archive = save(response, tmp_path / "busybox.tar")
    with loaded_in_docker(dockerd, tmp_path / "docker", archive, reference) as inspected:
        assert inspected["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
        assert inspected["Architecture"] == test_images.image.architecture
        ran = docker_as(
            dockerd, tmp_path / "docker", "run", "--rm", "--network", "none", reference, "cat", HELLO_PATH
        )
        assert ran.stdout == HELLO_TEXT


def test_podman_load_runs_the_same_archive(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    busybox: Pushed,
    podman: Podman,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    archive = save(fetch(owner.http, busybox.archive), tmp_path / "busybox.tar")
    reference = busybox.reference(token_registry)

    assert f"Loaded image: {reference}" in podman("load", "--input", str(archive)).stdout
    layers = json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", reference).stdout)
    assert layers == [test_images.image.diff_id]
    assert podman.run(reference, "cat", HELLO_PATH) == HELLO_TEXT


# --------------------------------------------------------------------------- OCI archives


def test_an_oci_archive_copies_back_with_the_same_digest_and_loads_in_podman(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    owner_skopeo: Skopeo,
    busybox: Pushed,
    podman: Podman,
    tmp_path: Path,
) -> None:
    response = fetch(owner.http, busybox.archive, format="oci")
    assert f'filename="{owner.name}_busybox_v1.oci.tar"' in response.headers["content-disposition"]
    root = oci_root(response.content)
    assert root["digest"] == busybox.digest
    assert root["annotations"]["org.opencontainers.image.ref.name"] == busybox.reference(token_registry)
    archive = save(response, tmp_path / "busybox.oci.tar")

    copy = f"{token_registry.host}/{owner.name}/copied:v1"
    owner_skopeo.copy(f"oci-archive:{archive}", f"docker://{copy}", extra=["--preserve-digests"])
    assert (
        "sha256:" + hashlib.sha256(owner_skopeo.inspect_raw(f"docker://{copy}")).hexdigest() == busybox.digest
    )

    assert (
        f"Loaded image: {busybox.reference(token_registry)}" in podman("load", "--input", str(archive)).stdout
    )
    assert podman.run(busybox.reference(token_registry), "cat", HELLO_PATH) == HELLO_TEXT


def test_an_index_as_an_oci_archive_keeps_every_platform(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    owner_skopeo: Skopeo,
    multi: Pushed,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    response = fetch(owner.http, multi.archive, format="oci")
    assert "dockyard-platform" not in response.headers
    root = oci_root(response.content)
    assert (root["digest"], root["mediaType"]) == (multi.digest, test_images.index.media_type)
    stored = {
        name.removeprefix("blobs/sha256/") for name in members(response.content) if name.startswith("blobs/")
    }
    assert stored == {digest.removeprefix("sha256:") for digest in test_images.digests}
    archive = save(response, tmp_path / "multi.oci.tar")

    copy = f"{token_registry.host}/{owner.name}/multi-copy:v1"
    owner_skopeo.copy(
        f"oci-archive:{archive}", f"docker://{copy}", all_images=True, extra=["--preserve-digests"]
    )
    assert (
        "sha256:" + hashlib.sha256(owner_skopeo.inspect_raw(f"docker://{copy}")).hexdigest() == multi.digest
    )

    # With a platform, the OCI archive holds that platform's manifest alone.
    arm = image_of(test_images, "arm64")
    single = fetch(owner.http, multi.archive, format="oci", platform="linux/arm64")
    assert oci_root(single.content)["digest"] == arm.manifest.digest
    assert single.headers["dockyard-platform"] == "linux/arm64/v8"


# --------------------------------------------------------------------------- platforms of an index


def test_an_index_gives_linux_amd64_by_default_and_the_platform_asked_for(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    multi: Pushed,
    dockerd: DockerDaemon,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    amd = image_of(test_images, "amd64")
    arm = image_of(test_images, "arm64")
    reference = multi.reference(token_registry)
    docker = tmp_path / "docker"

    default = fetch(owner.http, multi.archive)
    assert default.headers["dockyard-platform"] == "linux/amd64"
    assert default.headers["dockyard-archive-root"] == amd.manifest.digest
    assert docker_manifest(default.content)[1]["rootfs"]["diff_ids"] == [amd.diff_id]
    with loaded_in_docker(dockerd, docker, save(default, tmp_path / "amd64.tar"), reference) as inspected:
        assert (inspected["Architecture"], inspected["RootFS"]["Layers"]) == ("amd64", [amd.diff_id])
        if amd is test_images.image:  # this machine runs amd64: the image runs
            ran = docker_as(dockerd, docker, "run", "--rm", "--network", "none", reference, "cat", HELLO_PATH)
            assert ran.stdout == HELLO_TEXT

    chosen = fetch(owner.http, multi.archive, platform="linux/arm64")
    assert chosen.headers["dockyard-platform"] == "linux/arm64/v8"
    assert chosen.headers["dockyard-archive-root"] == arm.manifest.digest
    assert chosen.headers["etag"] != default.headers["etag"]
    entry, config = docker_manifest(chosen.content)
    assert entry["RepoTags"] == [reference]
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    with loaded_in_docker(dockerd, docker, save(chosen, tmp_path / "arm64.tar"), reference) as inspected:
        assert (inspected["Architecture"], inspected["Variant"]) == ("arm64", "v8")
        assert inspected["RootFS"]["Layers"] == [arm.diff_id]

    # The exact name and the bare architecture choose the same image.
    for spelled in ("linux/arm64/v8", "arm64"):
        same = fetch(owner.http, multi.archive, platform=spelled)
        assert same.headers["etag"] == chosen.headers["etag"]
        assert same.content == chosen.content


def test_a_platform_the_image_lacks_is_refused_with_the_list(
    owner: CatalogUser, multi: Pushed, busybox: Pushed, test_images: TestImages
) -> None:
    detail = problem(owner.http.get(multi.archive, params={"platform": "linux/s390x"}), 409)
    assert "no linux/s390x image" in detail
    assert "linux/amd64, linux/arm64/v8" in detail

    single = problem(owner.http.get(busybox.archive, params={"platform": "linux/s390x"}), 409)
    assert f"single-platform image for linux/{test_images.image.architecture}" in single

    assert "os/architecture" in problem(
        owner.http.get(multi.archive, params={"platform": "linux amd64!"}), 422
    )
    assert "format" in problem(owner.http.get(multi.archive, params={"format": "zip"}), 422)


# --------------------------------------------------------------------------- resuming


def test_an_interrupted_download_resumes_with_range_and_loads(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    busybox: Pushed,
    dockerd: DockerDaemon,
    tmp_path: Path,
) -> None:
    full = fetch(owner.http, busybox.archive)
    size, etag = len(full.content), full.headers["etag"]

    part = bytearray()
    with owner.http.stream("GET", busybox.archive) as interrupted:
        assert interrupted.status_code == 200
        for chunk in interrupted.iter_raw(16 * 1024):
            part += chunk
            if len(part) >= size // 2:
                break  # the connection is closed with the rest unread
    assert size // 2 <= len(part) < size

    rest = owner.http.get(busybox.archive, headers={"Range": f"bytes={len(part)}-", "If-Range": etag})
    assert rest.status_code == 206, rest.text[:300]
    assert rest.headers["content-range"] == f"bytes {len(part)}-{size - 1}/{size}"
    assert int(rest.headers["content-length"]) == size - len(part) == len(rest.content)
    assert rest.headers["etag"] == etag
    joined = bytes(part) + rest.content
    assert joined == full.content

    archive = tmp_path / "joined.tar"
    archive.write_bytes(joined)
    reference = busybox.reference(token_registry)
    with loaded_in_docker(dockerd, tmp_path / "docker", archive, reference):
        ran = docker_as(
            dockerd, tmp_path / "docker", "run", "--rm", "--network", "none", reference, "cat", HELLO_PATH
        )
        assert ran.stdout == HELLO_TEXT


def test_ranges_if_range_and_head(owner: CatalogUser, busybox: Pushed) -> None:
    full = fetch(owner.http, busybox.archive).content
    size = len(full)
    etag = fetch(owner.http, busybox.archive).headers["etag"]

    def ranged(spec: str, **headers: str) -> httpx.Response:
        return owner.http.get(busybox.archive, headers={"Range": spec, **headers})

    middle = ranged("bytes=1000-600999")  # crosses the headers into the layer, and stops inside it
    assert (middle.status_code, middle.headers["content-range"]) == (206, f"bytes 1000-600999/{size}")
    assert middle.content == full[1000:601000]
    tail = ranged("bytes=-700")
    assert (tail.status_code, tail.content) == (206, full[-700:])
    assert ranged(f"bytes=0-{size * 2}").content == full  # an end past the end is the end
    assert ranged(f"bytes={size - 1}-").content == full[-1:]

    past = ranged(f"bytes={size}-")
    assert problem(past, 416)
    assert past.headers["content-range"] == f"bytes */{size}"

    stale = ranged("bytes=100-", **{"If-Range": '"an-older-archive"'})
    assert (stale.status_code, stale.content) == (200, full)  # changed meanwhile: the whole archive
    fresh = ranged("bytes=100-", **{"If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, full[100:])
    several = ranged("bytes=0-9,20-29")
    assert (several.status_code, several.content) == (200, full)

    unchanged = owner.http.get(busybox.archive, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")

    head = owner.http.head(busybox.archive)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(size)
    assert head.headers["etag"] == etag
    head_range = owner.http.head(busybox.archive, headers={"Range": "bytes=10-"})
    assert (head_range.status_code, head_range.headers["content-length"]) == (206, str(size - 10))


@pytest.mark.parametrize(
    "spec",
    ["bytes=" + "1" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000, "bytes=\u00b2-"],
    ids=["start", "end", "suffix", "superscript"],
)
def test_a_range_with_a_number_too_long_gets_the_whole_archive(
    owner: CatalogUser, busybox: Pushed, spec: str
) -> None:
    # A malformed Range is ignored, as RFC 9110 allows; int() of 5,000 digits was a 500.
    full = fetch(owner.http, busybox.archive).content
    ranged = owner.http.get(busybox.archive, headers={b"Range": spec.encode("latin-1")})  # '²' as sent
    assert (ranged.status_code, ranged.content) == (200, full)


def test_resuming_after_the_tag_was_pushed_again_sends_the_new_archive_whole(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    owner_skopeo: Skopeo,
    test_images: TestImages,
) -> None:
    image = f"{owner.name}/moving"
    first = push(token_registry, owner, owner_skopeo, test_images.image_ref, image)
    old = fetch(owner.http, first.archive, format="oci")
    half = len(old.content) // 2

    second = push(token_registry, owner, owner_skopeo, test_images.index_ref, image, all_images=True)
    assert second.digest != first.digest
    resumed = owner.http.get(
        second.archive,
        params={"format": "oci"},
        headers={"Range": f"bytes={half}-", "If-Range": old.headers["etag"]},
    )
    assert resumed.status_code == 200  # not 206: the old first half does not belong to this archive
    assert resumed.headers["etag"] != old.headers["etag"]
    assert oci_root(resumed.content)["digest"] == second.digest
    assert resumed.content == fetch(owner.http, second.archive, format="oci").content


# --------------------------------------------------------------------------- who may download what


def test_external_versions_cannot_be_downloaded(owner: CatalogUser) -> None:
    version = owner.register(owner.name, "docker.io/library/alpine:3.20", name="alpine-ref")
    detail = problem(owner.http.get(f"/images/{version['image']}/versions/3.20/archive"), 409)
    assert "external image" in detail
    assert "docker.io/library/alpine:3.20" in detail
    assert "only internal images can be downloaded" in detail


def _set_status(registry: RunningRegistry, image: str, version: str, status: str, reason: str = "") -> None:
    """Put a version back to ``status`` in the server's database (a version whose inspection
    has not ended yet, or ended in failure: the background inspection is too quick to catch
    over HTTP, and a workspace's amd64 rule now refuses the push that used to fail it)."""
    query = (
        "UPDATE image_versions SET status = {p1}, status_reason = {p4} WHERE version = {p2} "
        "AND image_id = (SELECT id FROM images WHERE name = {p3})"
    )
    if registry.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(registry.data_dir / "dockyard.db", timeout=30)) as db, db:
            changed = db.execute(
                query.format(p1="?", p2="?", p3="?", p4="?"), (status, reason or None, version, image)
            ).rowcount
    else:

        async def update() -> int:
            conn = await asyncpg.connect(registry.database_url.replace("+asyncpg", "", 1))
            try:
                done: str = await conn.execute(
                    query.format(p1="$1", p2="$2", p3="$3", p4="$4"), status, version, image, reason or None
                )
            finally:
                await conn.close()
            return int(done.split()[-1])

        changed = asyncio.run(update())
    assert changed == 1


def test_pending_and_failed_versions_cannot_be_downloaded(
    token_registry: RunningRegistry, owner: CatalogUser, owner_skopeo: Skopeo, test_images: TestImages
) -> None:
    waiting = push(token_registry, owner, owner_skopeo, test_images.image_ref, f"{owner.name}/waiting")
    _set_status(token_registry, waiting.image, waiting.version, "pending")
    assert owner.version(waiting.image, waiting.version)["status"] == "pending"
    assert "is pending" in problem(owner.http.get(waiting.archive), 409)

    # A failed version: its inspection ended with a reason (the push itself was accepted).
    broken = push(token_registry, owner, owner_skopeo, test_images.image_ref, f"{owner.name}/broken")
    _set_status(token_registry, broken.image, broken.version, "failed", "its config blob could not be read")
    assert owner.version(broken.image, broken.version)["status"] == "failed"
    detail = problem(owner.http.get(broken.archive), 409)
    assert "is failed: its config blob could not be read" in detail
    assert "only available versions can be downloaded" in detail


def test_images_shared_from_another_workspace_cannot_be_downloaded(
    token_registry: RunningRegistry,
    admin: Api,
    owner: CatalogUser,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    with CatalogUser.connect(token_registry, new_user(admin, "sharer")) as sharer:
        skopeo = _skopeo_as(token_registry, sharer.name, tmp_path / "skopeo")
        public = push(token_registry, sharer, skopeo, test_images.image_ref, f"{sharer.name}/shared")
        sharer.api.set_visibility(public.image, "public")
        granted = push(token_registry, sharer, skopeo, test_images.image_ref, f"{sharer.name}/granted")
        sharer.api.grant(granted.image, owner.name, "pull")
        assert fetch(sharer.http, public.archive).headers["etag"]  # its own workspace may

    for pushed, how in ((public, "it is public"), (granted, "your access to it was granted on request")):
        assert owner.version(pushed.image, pushed.version)["status"] == "available"  # seen and pullable
        detail = problem(owner.http.get(pushed.archive), 403)
        assert f"belongs to workspace {sharer.name!r}, which you are not a member of" in detail
        assert how in detail
        assert "images shared from another workspace cannot be downloaded" in detail


def test_outsiders_get_404_as_for_a_missing_image_and_anonymous_callers_401(
    token_registry: RunningRegistry, admin: Api, owner: CatalogUser, busybox: Pushed
) -> None:
    missing = f"/images/{owner.name}/no-such-image/versions/v1/archive"
    with CatalogUser.connect(token_registry, new_user(admin, "outsider")) as outsider:
        hidden = problem(outsider.http.get(busybox.archive), 404)
        assert hidden == f"image {busybox.image!r} not found"
        assert (
            problem(outsider.http.get(missing), 404) == f"image {owner.name + '/no-such-image'!r} not found"
        )
    assert problem(owner.http.get(f"/images/{busybox.image}/versions/v9/archive"), 404) == (
        f"image {busybox.image!r} has no version 'v9'"
    )

    anonymous = httpx.get(f"{token_registry.url}/api/v1{busybox.archive}", timeout=30)
    assert "sign in" in problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Basic")


def test_members_admins_and_pull_tokens_may_download(
    token_registry: RunningRegistry,
    admin: Api,
    owner: CatalogUser,
    owner_skopeo: Skopeo,
    busybox: Pushed,
    test_images: TestImages,
) -> None:
    lab = owner.new_workspace("lab")
    in_lab = push(token_registry, owner, owner_skopeo, test_images.image_ref, f"{lab}/tool")
    expected = fetch(owner.http, in_lab.archive).content
    reader = new_user(admin, "lab-reader")
    owner.api.set_member(lab, reader, "reader")
    with CatalogUser.connect(token_registry, reader) as member:
        assert fetch(member.http, in_lab.archive).content == expected
    assert fetch(admin.http, in_lab.archive).content == expected

    _, pull_token = owner.api.personal_token(["pull"], name="pull-only")
    with_token = {"Authorization": f"Bearer {pull_token}"}
    by_token = httpx.get(f"{token_registry.url}/api/v1{busybox.archive}", headers=with_token, timeout=60)
    assert by_token.status_code == 200
    assert by_token.content == fetch(owner.http, busybox.archive).content
    as_password = httpx.get(
        f"{token_registry.url}/api/v1{busybox.archive}", auth=(owner.name, pull_token), timeout=60
    )
    assert as_password.content == by_token.content

    _, api_token = owner.api.personal_token(["api"], name="api-only")
    refused = httpx.get(
        f"{token_registry.url}/api/v1{busybox.archive}",
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=60,
    )
    assert "do not include pull" in problem(refused, 403)


def test_downloads_are_in_the_audit_log(admin: Api, owner: CatalogUser, busybox: Pushed) -> None:
    fetch(owner.http, busybox.archive, format="oci")
    owner.http.get(busybox.archive, headers={"Range": "bytes=512-"})
    entries = admin.call("GET", "/audit", params={"action": "image.download", "limit": 1000})
    mine = [e for e in entries if e["actor_name"] == owner.name and e["target"] == f"{busybox.image}:v1"]
    assert {(e["detail"]["format"], e["detail"]["start"]) for e in mine[:2]} == {("docker", 512), ("oci", 0)}
    assert all(e["detail"]["digest"] == busybox.digest for e in mine)


# --------------------------------------------------------------------------- the CLI


def _cli(registry: RunningRegistry, token: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env = {
        **base,
        "DOCKYARD_CLI_CONFIG": str(cwd / "cli.toml"),
        "DOCKYARD_URL": registry.url,
        "DOCKYARD_TOKEN": token,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "image", "download", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_the_cli_downloads_resumes_and_explains_refusals(
    token_registry: RunningRegistry,
    owner: CatalogUser,
    busybox: Pushed,
    multi: Pushed,
    podman: Podman,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    _, token = owner.api.personal_token(name="cli")
    full = fetch(owner.http, busybox.archive)

    done = _cli(token_registry, token, tmp_path, f"{busybox.image}:v1", "--quiet")
    assert done.returncode == 0, done.stderr
    saved = tmp_path / f"{owner.name}_busybox_v1.tar"
    assert saved.read_bytes() == full.content
    assert f"Saved {busybox.image}:v1 to {saved.name}" in done.stdout
    assert f"Digest: {busybox.digest}" in done.stdout
    assert "docker load -i" in done.stderr
    assert not list(tmp_path.glob("*.part*"))

    # An interrupted download: the first half is on disk with the archive's ETag.
    resumed = tmp_path / "resumed.tar"
    half = len(full.content) // 2
    Path(f"{resumed}.part").write_bytes(full.content[:half])
    Path(f"{resumed}.part.etag").write_text(full.headers["etag"])
    done = _cli(token_registry, token, tmp_path, f"{busybox.image}:v1", "-o", str(resumed))
    assert done.returncode == 0, done.stderr
    assert f"Resumed at byte {half} of {len(full.content)}" in done.stderr
    assert resumed.read_bytes() == full.content
    assert (
        f"Loaded image: {busybox.reference(token_registry)}" in podman("load", "--input", str(resumed)).stdout
    )

    # A leftover from another archive (the tag moved on): started over, not appended to.
    stale = tmp_path / "stale.tar"
    Path(f"{stale}.part").write_bytes(b"x" * 5000)
    Path(f"{stale}.part.etag").write_text('"an-older-archive"')
    done = _cli(token_registry, token, tmp_path, f"{busybox.image}:v1", "-o", str(stale))
    assert done.returncode == 0, done.stderr
    assert "Resumed" not in done.stderr
    assert stale.read_bytes() == full.content

    arm = image_of(test_images, "arm64")
    oci = tmp_path / "arm.oci.tar"
    done = _cli(
        token_registry,
        token,
        tmp_path,
        f"{multi.image}:v1",
        "-o",
        str(oci),
        "--format",
        "oci",
        "--platform",
        "linux/arm64",
    )
    assert done.returncode == 0, done.stderr
    assert "Platform: linux/arm64/v8" in done.stdout
    assert oci_root(oci.read_bytes())["digest"] == arm.manifest.digest

    refused = _cli(token_registry, token, tmp_path, f"{multi.image}:v1", "--platform", "linux/s390x")
    assert refused.returncode == 1
    assert "error:" in refused.stderr
    assert "linux/amd64, linux/arm64/v8" in refused.stderr
    assert not list(tmp_path.glob(f"{owner.name}_multi_v1.tar*"))
