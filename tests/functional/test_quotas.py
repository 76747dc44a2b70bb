"""Workspace quotas (#18) through real clients, on SQLite and PostgreSQL.

An admin sets a workspace's quota just above a first image; a second push with a new big layer
is refused with DENIED and the numbers, shown by skopeo and by docker, and leaves nothing
half-visible (no tag, no manifest, no catalog version); a blob shared by two repositories
counts once; parallel pushes never pass the limit; an archive's image over the quota is
refused (413) with nothing created; deletes and GC give the bytes back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.clients import DockerDaemon, Skopeo, containers_login, docker_as, docker_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.images import TestImages
from tests.support.servers import RunningRegistry, dockyard_cli, private_dockyard

pytestmark = pytest.mark.clients

MiB = 1 << 20
TOKEN_ENV = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}


@pytest.fixture
def people(token_registry: RunningRegistry) -> Iterator[tuple[Api, CatalogUser]]:
    """The admin's API client, and a fresh user whose personal workspace starts empty."""
    with (
        Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin,
        CatalogUser.connect(token_registry, new_user(admin, "quota")) as member,
    ):
        yield admin, member


def quota(api: Api | CatalogUser, workspace: str) -> dict[str, Any]:
    response = api.http.get(f"/workspaces/{workspace}/quota")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def set_quota(admin: Api, workspace: str, limit: int | str | None) -> dict[str, Any]:
    found: dict[str, Any] = admin.call("PUT", f"/workspaces/{workspace}/quota", json={"limit_bytes": limit})
    return found


def big_image(folder: Path, tag: str, size: int = MiB) -> Path:
    """A docker-save archive with one new layer of ``size`` random bytes."""
    path = folder / f"{tag.replace(':', '-').replace('/', '-')}.tar"
    path.write_bytes(docker_save([SavedImage([random_layer(size)], [tag])]))
    return path


def v2_tags(server: RunningRegistry, user: str, repository: str) -> list[str]:
    """The repository's tags through /v2 (none when it does not exist); never a manifest 2.0."""
    with oci_as(server, user, PASSWORD) as oci:
        assert oci.get_manifest(repository, "2.0").status_code == 404
        listed = oci.tags(repository)
        if listed.status_code == 404:
            assert listed.json()["errors"][0]["code"] == "NAME_UNKNOWN"
            return []
        assert listed.status_code == 200, listed.text
        found: list[str] = listed.json()["tags"]
    return found


def test_a_push_over_quota_is_refused_with_the_numbers_and_leaves_nothing_half_visible(
    token_registry: RunningRegistry,
    people: tuple[Api, CatalogUser],
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    admin, member = people
    ws = member.name
    host = token_registry.host
    skopeo = Skopeo(tmp_path / "skopeo")
    containers_login(skopeo, host, ws, PASSWORD)
    skopeo.copy(test_images.image_ref, f"docker://{host}/{ws}/tool:1.0")
    first = quota(member, ws)
    assert first["used_bytes"] == test_images.image.config.size + test_images.image.layer.size
    assert first["limit_bytes"] is None
    assert first["percent"] is None

    # The same blobs in a second repository of the workspace count once.
    skopeo.copy(test_images.image_ref, f"docker://{host}/{ws}/copy:1.0")
    assert quota(member, ws)["used_bytes"] == first["used_bytes"]

    limit = first["used_bytes"] + 64 * 1024
    # Members may not set it; admins may, as a human size too.
    assert member.http.put(f"/workspaces/{ws}/quota", json={"limit_bytes": limit}).status_code == 403
    assert set_quota(admin, ws, f"{limit}B")["limit_bytes"] == limit
    seen = quota(member, ws)
    assert (seen["limit_bytes"], seen["own_limit_bytes"]) == (limit, limit)
    view = member.http.get(f"/workspaces/{ws}").json()  # the workspace shows it to members
    assert (view["used_bytes"], view["limit_bytes"]) == (first["used_bytes"], limit)

    refused = skopeo.copy(
        f"docker-archive:{big_image(tmp_path, 'big:2.0')}", f"docker://{host}/{ws}/tool:2.0", check=False
    )
    assert not refused.ok
    assert "denied" in refused.stderr
    assert f"quota exceeded: workspace {ws} would use" in refused.stderr, refused.stderr
    assert "(this blob 1 MiB, stored " in refused.stderr, refused.stderr

    # Nothing half-visible: no tag, no manifest, no catalog version; the quota held.
    assert v2_tags(token_registry, ws, f"{ws}/tool") == ["1.0"]
    image = member.http.get(f"/images/{ws}/tool").json()
    assert [v["version"] for v in image["versions"]] == ["1.0"]
    after = quota(member, ws)
    assert after["used_bytes"] <= limit
    assert after["used_bytes"] < first["used_bytes"] + MiB

    # Bounded inputs: a clear problem, nothing changed.
    for bad in (-1, 2**63, "lots", "1e400", 1.5, True):
        answer = admin.http.put(f"/workspaces/{ws}/quota", json={"limit_bytes": bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert quota(member, ws)["limit_bytes"] == limit


def test_docker_shows_the_quota_refusal(
    dockerd: DockerDaemon, token_registry: RunningRegistry, people: tuple[Api, CatalogUser], tmp_path: Path
) -> None:
    set_quota(people[0], people[1].name, "512KiB")
    ws = people[1].name
    ref = f"{token_registry.host}/{ws}/big:1"
    config = tmp_path / "docker"
    docker_login(dockerd, config, token_registry.host, ws, PASSWORD)
    dockerd.cli("load", "--input", str(big_image(tmp_path, "quota-test/big:1")))
    dockerd.cli("tag", "quota-test/big:1", ref)
    try:
        refused = docker_as(dockerd, config, "push", ref, check=False)
        assert not refused.ok
        said = refused.stderr + refused.stdout
        assert "denied: quota exceeded" in said, said
        assert "512 KiB quota" in said
    finally:
        dockerd.cli("rmi", "--force", ref, "quota-test/big:1", check=False)
    assert v2_tags(token_registry, ws, f"{ws}/big") == []


def test_parallel_pushes_never_pass_the_limit(
    token_registry: RunningRegistry, people: tuple[Api, CatalogUser], tmp_path: Path
) -> None:
    admin, member = people
    ws = member.name
    host = token_registry.host
    set_quota(admin, ws, int(2.5 * MiB))  # room for two of the four 1 MiB images
    archives = [big_image(tmp_path, f"p{i}:1") for i in range(4)]
    skopeo = Skopeo(tmp_path / "skopeo")
    containers_login(skopeo, host, ws, PASSWORD)
    results: dict[int, bool] = {}

    def push(index: int) -> None:
        done = skopeo.copy(
            f"docker-archive:{archives[index]}", f"docker://{host}/{ws}/p{index}:1", check=False
        )
        results[index] = done.ok

    threads = [threading.Thread(target=push, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [False, False, True, True], results
    assert quota(member, ws)["used_bytes"] <= int(2.5 * MiB)
    for index, ok in results.items():
        assert v2_tags(token_registry, ws, f"{ws}/p{index}") == (["1"] if ok else [])


def test_an_archive_over_quota_is_refused_with_nothing_created(
    token_registry: RunningRegistry, people: tuple[Api, CatalogUser]
) -> None:
    admin, member = people
    ws = member.name
    uploads = Uploads(member.http)
    set_quota(admin, ws, 3 * MiB)
    first = docker_save([SavedImage([random_layer(2 * MiB)], ["first:1"])])
    assert uploads.one_shot(ws, first, version="1").status_code == 201
    second = uploads.upload(ws, docker_save([SavedImage([random_layer(2 * MiB)], ["second:1"])]))
    over = uploads.create(second["id"], expect=413, version="1")
    problem = over.json()
    assert problem["type"].endswith("/quota-exceeded")
    assert f"quota exceeded: workspace {ws} would use" in problem["detail"]
    assert problem["limit_bytes"] == 3 * MiB
    assert problem["adding_bytes"] > 2 * MiB
    assert member.http.get(f"/images/{ws}/second").status_code == 404
    assert quota(member, ws)["used_bytes"] < 3 * MiB
    # Over the quota (lowered below the usage), a new archive upload is refused at once.
    set_quota(admin, ws, 1)
    refused = member.http.post("/archives", json={"workspace": ws})
    assert refused.status_code == 413, refused.text
    assert "over its 1 B quota" in refused.json()["detail"]


def test_deletes_and_gc_give_the_quota_back(db_kind: str, tmp_path: Path, test_images: TestImages) -> None:
    with (
        private_dockyard(db_kind, tmp_path / "server", TOKEN_ENV) as (server, _),
        Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin,
    ):
        admin.create_workspace("lab")
        skopeo = Skopeo(tmp_path / "skopeo")
        containers_login(skopeo, server.host, ADMIN, ADMIN_PASSWORD)
        skopeo.copy(test_images.image_ref, f"docker://{server.host}/lab/one:1")
        skopeo.copy(test_images.image_ref, f"docker://{server.host}/lab/two:1")
        archive = big_image(tmp_path, "big:1")
        skopeo.copy(f"docker-archive:{archive}", f"docker://{server.host}/lab/two:2")
        shared = test_images.image.config.size + test_images.image.layer.size
        full = admin.call("GET", "/workspaces/lab/quota")["used_bytes"]
        assert full > shared + MiB

        admin.call("DELETE", "/images/lab/one", expect=204)
        assert admin.call("GET", "/workspaces/lab/quota")["used_bytes"] == full  # lab/two holds it all
        admin.call("DELETE", "/images/lab/two/versions/2", expect=204)
        gc = dockyard_cli(server, "gc", "--grace-seconds", "0")
        assert gc.returncode == 0, gc.stderr
        assert admin.call("GET", "/workspaces/lab/quota")["used_bytes"] == shared
        admin.call("DELETE", "/images/lab/two", expect=204)
        assert admin.call("GET", "/workspaces/lab/quota")["used_bytes"] == 0
