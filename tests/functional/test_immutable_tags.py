"""Immutable tags (#18): a workspace's owner names tags that keep the manifest they were first
pushed with (``*`` except ``latest`` here). A push that would move one is refused with the
spec's DENIED and the rule, for skopeo, docker and a plain Distribution client alike; the first
push of a tag, pushing the same manifest again and the exceptions stay allowed. Readers read
the rules, only owners change them, bad rules get a clear problem, and each change is audited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.clients import DockerDaemon, Skopeo, containers_login, docker_as, docker_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.images import DOCKER_ARCHIVE_TAG, TestImages
from tests.support.oci import Manifest, oci_manifest
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients

RULES = {"patterns": ["*"], "exceptions": ["latest"]}


@pytest.fixture
def owner(token_registry: RunningRegistry) -> Iterator[tuple[str, Api]]:
    name = unique("keeper")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(name)
    with Api.connect(token_registry, name, PASSWORD) as api:
        yield name, api


def test_an_immutable_tag_is_never_moved_but_its_first_push_and_the_exceptions_are(
    token_registry: RunningRegistry, owner: tuple[str, Api], tmp_path: Path
) -> None:
    name, api = owner
    path = f"/workspaces/{name}/immutable-tags"
    assert api.call("GET", path) == {"patterns": [], "exceptions": []}
    assert api.call("PUT", path, json=RULES) == RULES
    repository = f"{name}/pipeline"
    first, second = oci_manifest(), oci_manifest()
    with oci_as(token_registry, name, PASSWORD) as oci:
        assert oci.push(repository, first, "1.0").status_code == 201  # a tag's first push
        assert oci.push(repository, first, "1.0").status_code == 201  # the same manifest again
        oci.push_blobs(repository, second.blobs)
        moved = oci.put_manifest(repository, "1.0", second)
        assert moved.status_code == 403, moved.text
        (error,) = moved.json()["errors"]
        assert error["code"] == "DENIED"
        assert error["message"].startswith(f"{repository}:1.0 is immutable")
        assert "'*'" in error["message"]
        assert oci.get_manifest(repository, "1.0").headers["docker-content-digest"] == first.digest
        # The exception moves freely.
        assert oci.push(repository, first, "latest").status_code == 201
        assert oci.push(repository, second, "latest").status_code == 201
        assert oci.get_manifest(repository, "latest").headers["docker-content-digest"] == second.digest

    # skopeo is refused the same way, with the reason.
    skopeo = Skopeo(tmp_path / "skopeo")
    containers_login(skopeo, token_registry.host, name, PASSWORD)
    refused = skopeo.copy(
        f"docker://{token_registry.host}/{repository}:latest",
        f"docker://{token_registry.host}/{repository}:1.0",
        check=False,
    )
    assert not refused.ok
    assert "denied" in refused.stderr
    assert "is immutable" in refused.stderr

    # Without the rule the tag moves again.
    assert api.call("PUT", path, json={"patterns": []}) == {"patterns": [], "exceptions": []}
    with oci_as(token_registry, name, PASSWORD) as oci:
        assert oci.push(repository, second, "1.0").status_code == 201
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        changes = admin.call(
            "GET", "/audit", params={"workspace": name, "action": "workspace.immutable_tags"}
        )
    assert [c["detail"]["after"] for c in changes] == [{"patterns": [], "exceptions": []}, RULES]


def test_docker_push_to_an_immutable_tag_is_refused_with_the_reason(
    token_registry: RunningRegistry,
    owner: tuple[str, Api],
    dockerd: DockerDaemon,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    name, api = owner
    api.call("PUT", f"/workspaces/{name}/immutable-tags", json={"patterns": ["v*"]})
    repository = f"{name}/busybox"
    with oci_as(token_registry, name, PASSWORD) as oci:
        assert oci.push(repository, oci_manifest(), "v1").status_code == 201
    ref = f"{token_registry.host}/{repository}:v1"
    config = tmp_path / "docker"
    docker_login(dockerd, config, token_registry.host, name, PASSWORD)
    dockerd.cli("load", "--input", str(test_images.docker_archive))
    dockerd.cli("tag", DOCKER_ARCHIVE_TAG, ref)
    try:
        refused = docker_as(dockerd, config, "push", ref, check=False)
        assert not refused.ok
        assert f"{repository}:v1 is immutable" in refused.stderr + refused.stdout
        # Another tag of the same image is not covered by 'v*'.
        other = f"{token_registry.host}/{repository}:stable"
        dockerd.cli("tag", DOCKER_ARCHIVE_TAG, other)
        docker_as(dockerd, config, "push", other)
    finally:
        dockerd.cli("rmi", "--force", ref, f"{token_registry.host}/{repository}:stable", check=False)


def test_only_owners_set_the_rules_and_bad_rules_are_refused_clearly(
    token_registry: RunningRegistry, owner: tuple[str, Api]
) -> None:
    name, api = owner
    reader = unique("reader")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(reader)
    lab = f"{name}-lab"
    api.create_workspace(lab)
    api.set_member(lab, reader, "developer")
    path = f"/workspaces/{lab}/immutable-tags"
    api.call("PUT", path, json=RULES)
    with Api.connect(token_registry, reader, PASSWORD) as other:
        assert other.call("GET", path) == RULES
        refused = other.http.put(path, json={"patterns": []})
        assert refused.status_code == 403
        assert "owner" in refused.json()["detail"]
    for body in (
        {"patterns": ["v/1"]},
        {"patterns": ["x" * 129]},
        {"patterns": [f"v{i}" for i in range(51)]},
        {"patterns": "v*"},
        {"patterns": [""]},
    ):
        bad = api.http.put(path, json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json")
    assert api.call("GET", path) == RULES  # nothing changed


def test_concurrent_first_pushes_of_an_immutable_tag_leave_one_winner(
    token_registry: RunningRegistry, owner: tuple[str, Api]
) -> None:
    name, api = owner
    api.call("PUT", f"/workspaces/{name}/immutable-tags", json={"patterns": ["v*"]})
    repository = f"{name}/race"
    racers = [oci_manifest() for _ in range(8)]
    with oci_as(token_registry, name, PASSWORD) as oci:
        for manifest in racers:
            oci.push_blobs(repository, manifest.blobs)
    start = threading.Barrier(len(racers))

    def put(manifest: Manifest) -> tuple[int, list[dict[str, str]]]:
        with oci_as(token_registry, name, PASSWORD) as oci:
            oci.get_manifest(repository, "absent")  # signs in before the race starts
            start.wait(timeout=30)
            response = oci.put_manifest(repository, "v1", manifest)
            errors = response.json().get("errors", []) if response.status_code >= 400 else []
            return response.status_code, errors

    with ThreadPoolExecutor(len(racers)) as pool:
        answers = list(pool.map(put, racers))
    winners = [m.digest for m, (status, _) in zip(racers, answers, strict=True) if status == 201]
    assert len(winners) == 1, answers
    for status, errors in answers:
        if status != 201:
            assert status == 403, answers
            assert [e["code"] for e in errors] == ["DENIED"]
            assert errors[0]["message"].startswith(f"{repository}:v1 is immutable")
            assert "'v*'" in errors[0]["message"]
    with oci_as(token_registry, name, PASSWORD) as oci:
        assert oci.get_manifest(repository, "v1").headers["docker-content-digest"] == winners[0]
