"""Uploading image archives (issue #5) as users do it: over /api/v1, then pulling the new
image version with docker (a private dockerd) and podman and running it.

Archives come from the real tools: ``docker save`` of the busybox test image (loaded into
the private dockerd from the project's docker archive), ``skopeo copy ... oci-archive:`` of
the test layout (one image, and with ``--all`` the 2-platform index), the docker-save tar
compressed with gzip and zstd by the test. Hostile archives are built with ``tarfile``
(tests.support.archives); each is refused with a 4xx that says why, and leaves no blob,
repository, image or session behind. Limits (archive size, workspace quota) and a resumed
upload after a server crash run on private servers with their own settings.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import zstandard

from tests.support.archive_crash import TOKEN_ENV, kill_mid_import
from tests.support.archives import (
    Json,
    SavedImage,
    Uploads,
    docker_save,
    docker_save_with,
    entry,
    gzip_bomb,
    oci_archive,
    oci_layout_with_bad_layer,
    random_layer,
    sha256,
)
from tests.support.catalog import CatalogUser, new_user, problem
from tests.support.clients import DockerDaemon, Podman, Skopeo, containers_login, docker_as, docker_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.images import (
    DOCKER_ARCHIVE_TAG,
    HELLO_PATH,
    HELLO_TEXT,
    TestImages,
    native_architecture,
)
from tests.support.servers import RunningRegistry, private_dockyard

pytestmark = pytest.mark.clients

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class Person:
    """A user with a personal workspace, their /api/v1 client and the archive helpers."""

    user: CatalogUser
    uploads: Uploads

    @property
    def name(self) -> str:
        return self.user.name


@contextlib.contextmanager
def person(registry: RunningRegistry, admin: Api, label: str) -> Iterator[Person]:
    with CatalogUser.connect(registry, new_user(admin, label)) as user:
        yield Person(user, Uploads(user.http))


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture
def me(token_registry: RunningRegistry, admin: Api) -> Iterator[Person]:
    """A fresh user per test: their workspace starts empty."""
    with person(token_registry, admin, "uploader") as found:
        yield found


@pytest.fixture(scope="module")
def docker_saved(
    dockerd: DockerDaemon, test_images: TestImages, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """``docker save`` of the busybox test image, by the private dockerd (which keeps no copy)."""
    folder = tmp_path_factory.mktemp("docker-save")
    dockerd.cli("load", "--input", str(test_images.docker_archive))
    try:
        dockerd.cli("save", "--output", str(folder / "saved.tar"), DOCKER_ARCHIVE_TAG)
    finally:
        dockerd.cli("rmi", "--force", DOCKER_ARCHIVE_TAG)
    return (folder / "saved.tar").read_bytes()


def stored_blobs(registry: RunningRegistry) -> set[Path]:
    return set((registry.data_dir / "storage" / "blobs").rglob("data"))


def archive_folders(registry: RunningRegistry) -> list[Path]:
    folder = registry.data_dir / "storage" / "archives"
    return sorted(folder.iterdir()) if folder.exists() else []


def manifest_of(registry: RunningRegistry, user: str, repository: str, reference: str) -> Json:
    with oci_as(registry, user, PASSWORD) as oci:
        response = oci.get_manifest(repository, reference)
        assert response.status_code == 200, response.text
        found: Json = response.json()
        return found


def layer_bytes(registry: RunningRegistry, user: str, repository: str, digest: str) -> bytes:
    with oci_as(registry, user, PASSWORD) as oci:
        response = oci.get_blob(repository, digest)
        assert response.status_code == 200, response.text
        return response.content


def docker_pull_and_run(
    dockerd: DockerDaemon, config: Path, registry: RunningRegistry, me: Person, ref: str
) -> None:
    """docker login, pull (nothing of the image is in the daemon before) and run ``cat``."""
    assert "Login Succeeded" in docker_login(dockerd, config, registry.host, me.name, PASSWORD).stdout
    try:
        docker_as(dockerd, config, "pull", ref)
        ran = docker_as(dockerd, config, "run", "--rm", "--network", "none", ref, "cat", HELLO_PATH)
        assert ran.stdout == HELLO_TEXT
    finally:
        docker_as(dockerd, config, "rmi", "--force", ref, check=False)


def podman_pull_and_run(podman: Podman, registry: RunningRegistry, me: Person, ref: str) -> None:
    assert "Login Succeeded" in containers_login(podman, registry.host, me.name, PASSWORD).stdout
    podman.pull(ref)
    assert podman.run(ref, "cat", HELLO_PATH) == HELLO_TEXT


# --------------------------------------------------------------------------- docker save


def test_a_docker_save_archive_uploaded_in_chunks_becomes_a_version_docker_and_podman_run(
    token_registry: RunningRegistry,
    me: Person,
    docker_saved: bytes,
    dockerd: DockerDaemon,
    podman: Podman,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    uploads = me.uploads
    archive_id = uploads.start(me.name, len(docker_saved))
    half = len(docker_saved) // 2
    uploads.send_all(archive_id, docker_saved, 128 * 1024, stop=half)
    status = uploads.status(archive_id)
    assert (status["state"], status["offset"], status["size"]) == ("receiving", half, len(docker_saved))
    # A chunk that does not continue the upload is refused with the offset to resume from.
    wrong = uploads.send(archive_id, docker_saved[half + 10 :], half + 10, len(docker_saved))
    assert "resume from offset" in problem(wrong, 416)
    assert wrong.json()["offset"] == half
    assert wrong.headers["Upload-Offset"] == str(half)
    uploads.send_all(archive_id, docker_saved, 128 * 1024, start=half)

    done = uploads.complete(archive_id).json()
    assert done["state"] == "done"
    assert done["reason"] is None
    assert done["format"] == "docker-save"  # docker 20.10 writes the layout of docker < 25
    assert done["processed"] == len(docker_saved)
    (image,) = uploads.http.get(f"/archives/{archive_id}/images").json()
    assert image["repo_tags"] == [DOCKER_ARCHIVE_TAG]
    assert image["platforms"] == [f"linux/{native_architecture()}"]
    assert image["layers"] == 1

    version = uploads.create(
        archive_id, name="busybox-tool", version="1.0", type="bench", regions=["eu-west"],
        cluster_compatibility=["hpc-a"], visibility="public",
    ).json()  # fmt: skip
    repository = f"{me.name}/busybox-tool"
    assert (version["image"], version["version"], version["source"]) == (repository, "1.0", "internal")
    assert (version["kind"], version["regions"]) == ("bench", ["eu-west"])
    assert version["cluster_compatibility"] == ["hpc-a"]
    # The new image is public as asked (the workspace's default is private) from the start: its
    # history says it was created public, never private then changed.
    assert me.user.image(repository)["visibility"] == "public"
    events = me.user.events(repository)
    assert [e["detail"]["visibility"] for e in events if e["kind"] == "created"] == ["public"]
    assert not [e for e in events if e["kind"] == "modified" and "visibility" in e["detail"]["changes"]]
    inspected = me.user.wait_inspected(repository, "1.0")
    assert inspected["status"] == "available", inspected
    assert inspected["platforms"] == [f"linux/{native_architecture()}"]

    # Stored as a registry would: the layer gzip-compressed, the config's diff_id unchanged.
    manifest = manifest_of(token_registry, me.name, repository, "1.0")
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == OCI_LAYER_GZIP
    blob = layer_bytes(token_registry, me.name, repository, layer["digest"])
    assert sha256(gzip.decompress(blob)) == test_images.image.diff_id
    config = json.loads(layer_bytes(token_registry, me.name, repository, manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == [test_images.image.diff_id]

    reference = f"{token_registry.host}/{repository}:1.0"
    docker_pull_and_run(dockerd, tmp_path / "docker", token_registry, me, reference)
    podman_pull_and_run(podman, token_registry, me, reference)


def test_an_existing_version_is_refused_unless_replaced_and_blobs_are_not_written_twice(
    token_registry: RunningRegistry, me: Person
) -> None:
    archive = docker_save([SavedImage([random_layer(300_000)], ["tool:1"])])
    first = me.uploads.upload(me.name, archive)
    assert first["bytes_written"] > 300_000  # config and layer, compressed (random bytes do not shrink)
    me.uploads.create(first["id"], name="tool", version="1")
    before = stored_blobs(token_registry)

    # The same archive again: every blob is already stored, none is written.
    again = me.uploads.upload(me.name, archive)
    assert again["bytes_written"] == 0
    assert again["bytes_deduplicated"] == first["bytes_written"]
    taken = me.uploads.create(again["id"], expect=409, name="tool", version="1")
    assert "tool:1 already exists" in problem(taken, 409)
    replaced = me.uploads.create(again["id"], name="tool", version="1", replace=True).json()
    assert replaced["version"] == "1"
    me.uploads.create(again["id"], name="tool", version="2")  # the defaults of another name work too
    assert stored_blobs(token_registry) == before
    assert me.user.wait_inspected(f"{me.name}/tool", "2")["status"] == "available"


def test_name_and_version_default_to_the_images_tag(token_registry: RunningRegistry, me: Person) -> None:
    archive = docker_save([SavedImage([random_layer(1000)], ["registry.example:5000/team/app:2.1"])])
    response = me.uploads.one_shot(me.name, archive, version="2.1")
    assert response.status_code == 201, response.text
    assert response.json()["version"]["image"] == f"{me.name}/app"
    done = me.uploads.upload(me.name, archive)
    created = me.uploads.create(done["id"], version="2.2").json()
    assert (created["image"], created["version"]) == (f"{me.name}/app", "2.2")


def test_a_multi_image_archive_asks_which_image(token_registry: RunningRegistry, me: Person) -> None:
    archive = docker_save(
        [SavedImage([random_layer(2000)], ["one:1"]), SavedImage([random_layer(3000)], ["two:1"])]
    )
    done = me.uploads.upload(me.name, archive)
    assert [image["repo_tags"] for image in done["images"]] == [["one:1"], ["two:1"]]
    unclear = me.uploads.create(done["id"], expect=422, name="pick", version="1")
    assert "holds 2 images; choose one" in problem(unclear, 422)
    by_tag = me.uploads.create(done["id"], image="two:1").json()
    assert (by_tag["image"], by_tag["version"]) == (f"{me.name}/two", "1")
    by_index = me.uploads.create(done["id"], image=0, name="first", version="1").json()
    assert by_index["image"] == f"{me.name}/first"


# --------------------------------------------------------------------------- compressed archives


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_compressed_docker_save_archive_pulls_and_runs(
    compression: str,
    token_registry: RunningRegistry,
    me: Person,
    docker_saved: bytes,
    dockerd: DockerDaemon,
    podman: Podman,
    tmp_path: Path,
) -> None:
    if compression == "gzip":
        archive = gzip.compress(docker_saved, mtime=0)
    else:
        archive = zstandard.ZstdCompressor(level=3).compress(docker_saved)
    # Layers are stored as asked: gzip (the default) or zstd.
    done = me.uploads.upload(me.name, archive, layer_compression=compression)
    assert (done["compression"], done["layer_compression"]) == (compression, compression)
    me.uploads.create(done["id"], name=f"packed-{compression}", version="1")
    repository = f"{me.name}/packed-{compression}"
    assert me.user.wait_inspected(repository, "1")["status"] == "available"
    (layer,) = manifest_of(token_registry, me.name, repository, "1")["layers"]
    assert layer["mediaType"] == (OCI_LAYER_GZIP if compression == "gzip" else OCI_LAYER_ZSTD)

    reference = f"{token_registry.host}/{repository}:1"
    if compression == "gzip":  # docker 20.10 does not pull zstd layers
        docker_pull_and_run(dockerd, tmp_path / "docker", token_registry, me, reference)
    podman_pull_and_run(podman, token_registry, me, reference)


# --------------------------------------------------------------------------- OCI archives (skopeo)


def test_an_oci_archive_made_by_skopeo_keeps_its_digest_and_runs(
    token_registry: RunningRegistry,
    me: Person,
    skopeo: Skopeo,
    podman: Podman,
    dockerd: DockerDaemon,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    path = tmp_path / "busybox.oci.tar"
    skopeo.copy(test_images.image_ref, f"oci-archive:{path}:busybox:5")
    archive = path.read_bytes()

    response = me.uploads.one_shot(me.name, archive, name="oci-busybox", version="5", type="tool")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["archive"]["format"] == "oci-layout"
    assert result["archive"]["images"][0]["repo_tags"] == ["busybox:5"]
    version = result["version"]
    # Nothing was recompressed, so the manifest is pushed byte for byte.
    assert version["digest"] == test_images.image.manifest.digest
    assert me.user.wait_inspected(f"{me.name}/oci-busybox", "5")["status"] == "available"

    # Its blobs are stored now: the same archive again is compared, not written.
    again = me.uploads.upload(me.name, archive)
    assert again["bytes_written"] == 0
    assert again["bytes_deduplicated"] > 0

    reference = f"{token_registry.host}/{me.name}/oci-busybox:5"
    podman_pull_and_run(podman, token_registry, me, reference)
    docker_pull_and_run(dockerd, tmp_path / "docker", token_registry, me, reference)


def test_a_multi_platform_oci_archive_becomes_one_version_with_both_platforms(
    token_registry: RunningRegistry,
    me: Person,
    skopeo: Skopeo,
    podman: Podman,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    path = tmp_path / "multi.oci.tar"
    skopeo.copy(test_images.index_ref, f"oci-archive:{path}:multi:1", all_images=True)

    done = me.uploads.upload(me.name, path.read_bytes(), chunk=100_000)
    (image,) = done["images"]
    assert sorted(image["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    assert (image["media_type"], image["digest"]) == (OCI_INDEX, test_images.index.digest)

    version = me.uploads.create(done["id"], name="multi", version="1").json()
    assert version["digest"] == test_images.index.digest
    inspected = me.user.wait_inspected(f"{me.name}/multi", "1")
    assert inspected["status"] == "available"
    assert sorted(inspected["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    index = manifest_of(token_registry, me.name, f"{me.name}/multi", "1")
    assert {m["digest"] for m in index["manifests"]} == {
        test_images.image.manifest.digest,
        test_images.foreign.manifest.digest,
    }
    podman_pull_and_run(podman, token_registry, me, f"{token_registry.host}/{me.name}/multi:1")


# --------------------------------------------------------------------------- hostile archives


def pax_sized(size: str) -> bytes:
    """An archive whose first entry's pax header gives ``size`` as its size."""
    sized = entry("notes.txt", b"x")
    sized[0].pax_headers = {"size": size}
    return docker_save_with([sized])


HOSTILE = {
    # '²' passes str.isdigit; int() refuses it, and numbers of more than 4,300 digits: a 500.
    "pax size not ascii digits": (pax_sized("\u00b2"), "invalid pax size"),
    "pax size of 5000 digits": (pax_sized("1" * 5000), "invalid pax size"),
    "traversal": (docker_save_with([entry("../../etc/evil", b"x")]), "path traversal ('..')"),
    "absolute path": (docker_save_with([entry("/etc/evil", b"x")]), "absolute path in the archive"),
    "symlink out": (
        docker_save_with([entry("evil", kind=tarfile.SYMTYPE, link="../../etc/passwd")]),
        "symlink evil points outside the archive",
    ),
    "hard link out": (
        docker_save_with([entry("evil", kind=tarfile.LNKTYPE, link="/etc/passwd")]),
        "hardlink evil points outside the archive",
    ),
    "device file": (
        docker_save_with([entry("dev/null", kind=tarfile.CHRTYPE)]),
        "character device entries are not allowed",
    ),
    "duplicate entries": (
        docker_save_with([entry("manifest.json", b"[]")]),
        "duplicate entry in the archive: manifest.json",
    ),
    "missing file": (
        docker_save_with([], [{"Config": "nowhere.json", "RepoTags": ["x:1"], "Layers": []}]),
        "not in the archive",
    ),
    "layer not matching its digest": (oci_layout_with_bad_layer(), "declares digest"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_and_leaves_nothing(
    case: str, token_registry: RunningRegistry, me: Person
) -> None:
    archive, reason = HOSTILE[case]
    blobs_before = stored_blobs(token_registry)
    folders_before = archive_folders(token_registry)

    refused = me.uploads.one_shot(me.name, archive, name="hostile", version="1")

    assert reason in problem(refused, 422)
    assert refused.json()["type"].rsplit("/", 1)[1] in (
        "unsafe-archive",
        "invalid-archive",
        "digest-mismatch",
    )
    assert stored_blobs(token_registry) == blobs_before
    assert archive_folders(token_registry) == folders_before
    assert me.uploads.http.get("/archives").json() == []  # the session went with it
    assert me.user.http.get(f"/images/{me.name}/hostile").status_code == 404
    with oci_as(token_registry, me.name, PASSWORD) as oci:
        assert oci.get_manifest(f"{me.name}/hostile", "1").status_code == 404


def test_a_chunked_upload_of_a_bomb_fails_with_the_reason_and_keeps_nothing(
    token_registry: RunningRegistry, me: Person
) -> None:
    bomb = gzip_bomb(300 << 20)
    assert len(bomb) < 1 << 20
    folders_before = archive_folders(token_registry)
    done = me.uploads.start(me.name, len(bomb))
    # The archive is imported as it arrives: a chunk is answered once it is queued, so the
    # refusal comes with a later chunk, or at the latest when the upload is finished.
    step = 64 * 1024
    refused = None
    for offset in range(0, len(bomb), step):
        response = me.uploads.send(done, bomb[offset : offset + step], offset, len(bomb))
        if response.status_code != 202:
            refused = response
            break
    if refused is None:
        refused = me.uploads.http.put(f"/archives/{done}", timeout=300)
    assert refused.status_code in (409, 422), refused.text
    assert "decompression bomb" in refused.json()["detail"]
    status = me.uploads.status(done)
    assert status["state"] == "failed"
    assert "decompression bomb" in status["reason"]
    assert archive_folders(token_registry) == folders_before  # nothing staged stays
    again = me.uploads.send(done, bomb[:step], 0, len(bomb))
    assert "decompression bomb" in problem(again, 409)
    assert "decompression bomb" in problem(me.uploads.complete(done, expect=409), 409)
    assert me.uploads.http.delete(f"/archives/{done}").status_code == 204
    assert me.uploads.http.get(f"/archives/{done}").status_code == 404


@pytest.mark.parametrize(
    "header",
    [f"bytes 0-{'9' * 5000}/*", f"bytes {'1' * 5000}-2/3", f"bytes 0-0/{'9' * 5000}", "bytes 0-\u00b2/4"],
    ids=["end", "start", "total", "superscript"],
)
def test_a_content_range_with_a_number_too_long_is_a_bad_range(me: Person, header: str) -> None:
    archive_id = me.uploads.start(me.name)
    headers = {b"Content-Range": header.encode("latin-1")}  # '²' as a client sends it
    refused = me.uploads.http.patch(f"/archives/{archive_id}", content=b"x", headers=headers)
    assert "is not 'bytes START-END/TOTAL'" in problem(refused, 400)
    assert refused.json()["type"].rsplit("/", 1)[1] == "bad-range"
    assert me.uploads.status(archive_id)["offset"] == 0


def test_sessions_are_private_to_their_uploader(
    token_registry: RunningRegistry, me: Person, admin: Api, docker_saved: bytes
) -> None:
    archive_id = me.uploads.start(me.name)
    with person(token_registry, admin, "other") as other:
        assert other.uploads.http.get(f"/archives/{archive_id}").status_code == 404
        refused = other.uploads.send(archive_id, b"x", 0)
        assert "not found" in problem(refused, 404)
        # Nor may anyone start uploads into a workspace where they may not push.
        forbidden = other.uploads.http.post("/archives", json={"workspace": me.name})
        assert "developer" in problem(forbidden, 403)


# --------------------------------------------------------------------------- limits


def test_archive_size_and_workspace_quota_are_enforced(db_kind: str, tmp_path: Path) -> None:
    env = {
        **TOKEN_ENV,
        "DOCKYARD_ARCHIVE_MAX_BYTES": str(4 << 20),
        "DOCKYARD_WORKSPACE_QUOTA_BYTES": str(3 << 20),
    }
    with (
        private_dockyard(db_kind, tmp_path, env) as (server, _),
        Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin,
        person(server, admin, "limited") as me,
    ):
        big = docker_save([SavedImage([random_layer(5 << 20)], ["big:1"])])
        declared = me.uploads.http.post("/archives", json={"workspace": me.name, "size": len(big)})
        assert f"at most {4 << 20} bytes" in problem(declared, 413)
        assert "at most" in problem(me.uploads.one_shot(me.name, big, name="big", version="1"), 413)
        # Sent in chunks without a declared size: refused once past the limit, nothing kept.
        undeclared = me.uploads.start(me.name)
        refused = None
        for offset in range(0, len(big), 1 << 20):
            response = me.uploads.send(undeclared, big[offset : offset + (1 << 20)], offset)
            if response.status_code != 202:
                refused = response
                break
        assert refused is not None
        assert "at most" in problem(refused, 413)
        assert me.uploads.status(undeclared)["state"] == "failed"
        assert archive_folders(server) == []

        first = docker_save([SavedImage([random_layer(2 << 20)], ["first:1"])])
        second = docker_save([SavedImage([random_layer(2 << 20)], ["second:1"])])
        assert me.uploads.one_shot(me.name, first, version="1").status_code == 201
        done = me.uploads.upload(me.name, second)
        over = me.uploads.create(done["id"], expect=413, version="1")
        assert "quota" in problem(over, 413)
        assert me.user.http.get(f"/images/{me.name}/second").status_code == 404
        # An image whose blobs the workspace already holds adds nothing: it still fits.
        again = me.uploads.upload(me.name, first)
        assert me.uploads.create(again["id"], name="first-again", version="1").status_code == 201


def test_chunks_on_new_connections_reach_the_import_whichever_process_takes_them(
    token_registry: RunningRegistry, me: Person
) -> None:
    """The server's processes share the port, so each connection lands in any of them; the
    upload's import lives in one. A chunk that lands in another is passed on to it: every
    chunk continues the upload, none is asked for again."""
    layers = [random_layer(1 << 20, f"data/{i}.bin") for i in range(4)]
    archive = docker_save([SavedImage(layers, ["hops:1"])])
    archive_id = me.uploads.start(me.name, len(archive))
    step = 256 * 1024
    for offset in range(0, len(archive), step):
        end = min(offset + step, len(archive))
        with httpx.Client(base_url=me.uploads.http.base_url, auth=(me.name, PASSWORD), timeout=60) as fresh:
            response = fresh.patch(
                f"/archives/{archive_id}",
                content=archive[offset:end],
                headers={"Content-Range": f"bytes {offset}-{end - 1}/{len(archive)}"},
            )
        assert response.status_code == 202, response.text
        assert response.json()["offset"] == end
    with httpx.Client(base_url=me.uploads.http.base_url, auth=(me.name, PASSWORD), timeout=60) as fresh:
        done = fresh.put(f"/archives/{archive_id}")
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "done"
    me.uploads.create(archive_id, version="1")
    manifest = manifest_of(token_registry, me.name, f"{me.name}/hops", "1")
    repository = f"{me.name}/hops"
    stored = [layer_bytes(token_registry, me.name, repository, d["digest"]) for d in manifest["layers"]]
    assert [gzip.decompress(blob) for blob in stored] == layers


# --------------------------------------------------------------------------- a server crash


def test_an_upload_resumes_after_the_server_is_killed_mid_chunk(db_kind: str, tmp_path: Path) -> None:
    """The import takes the bytes as they arrive and checkpoints between tar entries: after a
    crash the session resumes from its last checkpoint. The restarted server knows at once
    that the import's process is gone (no waiting for its lease to run out): the first GET
    gives the checkpoint's offset, and what the dead import left beside it is gone."""
    with private_dockyard(db_kind, tmp_path, TOKEN_ENV) as (server, restart):
        killed = kill_mid_import(server)
        again = restart()
        name, archive_id, archive = killed.user, killed.archive_id, killed.archive
        with CatalogUser.connect(again, name) as user:
            uploads = Uploads(user.http)
            status = uploads.status(archive_id)
            assert (status["state"], status["offset"]) == ("receiving", killed.checkpoint), (
                f"the dead import had shown {killed.offset_at_crash}"
            )
            assert not killed.leftovers & killed.files(), "the dead import's leftovers are still there"
            response = uploads.send(archive_id, archive[killed.checkpoint :], killed.checkpoint, len(archive))
            assert response.status_code == 202, response.text
            assert response.json()["offset"] == len(archive)
            # Completed in the background; GET reports the import's state until it is done.
            started = user.http.put(f"/archives/{archive_id}", params={"wait": "false"})
            assert started.status_code == 202, started.text
            assert started.json()["state"] in ("importing", "done")
            status = uploads.after_importing(archive_id)
            assert status["state"] == "done", status
            assert status["processed"] == len(archive)
            uploads.create(archive_id, version="1")
            assert user.wait_inspected(f"{name}/resumed", "1")["status"] == "available"
            manifest = manifest_of(again, name, f"{name}/resumed", "1")
            stored = [layer_bytes(again, name, f"{name}/resumed", d["digest"]) for d in manifest["layers"]]
            assert [gzip.decompress(blob) for blob in stored] == killed.layers
        assert not (killed.folder / "checkpoint").exists()


# --------------------------------------------------------------------------- the whole round trip


def test_round_trip_docker_save_upload_pull_download_load_run(
    token_registry: RunningRegistry,
    me: Person,
    docker_saved: bytes,
    dockerd: DockerDaemon,
    podman: Podman,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    """docker save → upload → docker and podman pull → download → docker and podman load →
    the loaded image runs and has the layers it was saved with."""
    done = me.uploads.upload(me.name, docker_saved)
    me.uploads.create(done["id"], name="round-trip", version="1.0")
    repository = f"{me.name}/round-trip"
    assert me.user.wait_inspected(repository, "1.0")["status"] == "available"
    reference = f"{token_registry.host}/{repository}:1.0"
    docker_pull_and_run(dockerd, tmp_path / "docker-pull", token_registry, me, reference)
    podman_pull_and_run(podman, token_registry, me, reference)

    response = me.user.http.get(f"/images/{repository}/versions/1.0/archive", timeout=120)
    assert response.status_code == 200, response.text
    archive = tmp_path / "downloaded.tar"
    archive.write_bytes(response.content)

    config = tmp_path / "docker-load"
    loaded = docker_as(dockerd, config, "load", "--input", str(archive))
    assert reference in loaded.stdout
    try:
        layers = json.loads(
            docker_as(
                dockerd, config, "image", "inspect", "--format", "{{json .RootFS.Layers}}", reference
            ).stdout
        )
        assert layers == [test_images.image.diff_id], "the layers it was saved with"
        ran = docker_as(dockerd, config, "run", "--rm", "--network", "none", reference, "cat", HELLO_PATH)
        assert ran.stdout == HELLO_TEXT
    finally:
        docker_as(dockerd, config, "rmi", "--force", reference, check=False)

    podman("rmi", "--force", reference)
    assert f"Loaded image: {reference}" in podman("load", "--input", str(archive)).stdout
    layers = json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", reference).stdout)
    assert layers == [test_images.image.diff_id]
    assert podman.run(reference, "cat", HELLO_PATH) == HELLO_TEXT


# --------------------------------------------------------------------------- bytes written once


def _written(registry: RunningRegistry) -> int:
    """Bytes the server's processes have passed to write(2) so far (wchar in /proc/PID/io)."""
    pids = [registry.process.pid]
    found = subprocess.run(["pgrep", "-P", str(registry.process.pid)], capture_output=True, text=True)
    pids += [int(pid) for pid in found.stdout.split()]
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("wchar:"):
                    total += int(line.split()[1])
    return total


def test_one_shot_and_chunked_uploads_write_each_byte_once(
    token_registry: RunningRegistry, admin: Api
) -> None:
    """Both kinds of upload stream from the request into the blobs: the archive itself is never
    written, each blob's bytes once."""
    size = 24 << 20
    with person(token_registry, admin, "once") as me:
        archive = oci_archive([os.urandom(size)], "once:1")
        before = _written(token_registry)
        response = me.uploads.one_shot(me.name, archive, name="once", version="1")
        assert response.status_code == 201, response.text
        one_shot = _written(token_registry) - before

        chunked_archive = oci_archive([os.urandom(size)], "twice:1")
        before = _written(token_registry)
        done = me.uploads.upload(me.name, chunked_archive, chunk=4 << 20)
        me.uploads.create(done["id"], name="twice", version="1")
        chunked = _written(token_registry) - before
    assert size <= one_shot < 1.5 * size, one_shot
    assert size <= chunked < 1.5 * size, chunked
