"""Access requests end to end, as the two people involved see them.

The owner of a workspace pushes a private image; another user's ``docker pull`` is turned
away; they ask for access through ``/api/v1/access-requests``; the owner finds the request
among the workspace's pending ones and approves it (pull, with an expiry) or rejects it;
the requester reads the decision in ``/api/v1/notifications``; ``docker pull`` then works,
or still does not. When the grant ends, a fresh ``docker pull`` is refused again.

Waiting for a real expiry would take minutes, so the grant is ended below the HTTP edge:
an UPDATE of ``repository_grants.expires_at`` in the server's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.clients import DockerDaemon, docker_as, docker_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, unique
from tests.support.images import DOCKER_ARCHIVE_TAG, HELLO_PATH, HELLO_TEXT, TestImages
from tests.support.matrix import announce_auth_change
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients

PULL_DENIED = "pull access denied for {repository}, repository does not exist or may require 'docker login'"
REASON = "I maintain the downstream pipeline that deploys this image."


@pytest.fixture
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture
def image_id(dockerd: DockerDaemon, test_images: TestImages) -> Iterator[str]:
    """The busybox image's ID; the shared daemon holds no copy of it once the test ends."""
    image = test_images.image.config.digest
    try:
        yield image
    finally:
        dockerd.cli("rmi", "--force", image, check=False)


def _in_daemon(dockerd: DockerDaemon, image: str) -> bool:
    return dockerd.cli("image", "inspect", image, check=False).ok


def _owner_pushes(
    dockerd: DockerDaemon, test_images: TestImages, registry: RunningRegistry, owner: str, config: Path
) -> str:
    """The owner pushes the busybox image to ``OWNER/private:v1``; the daemon keeps no copy."""
    ref = f"{registry.host}/{owner}/private:v1"
    docker_login(dockerd, config, registry.host, owner, PASSWORD)
    dockerd.cli("load", "--input", str(test_images.docker_archive))
    dockerd.cli("tag", DOCKER_ARCHIVE_TAG, ref)
    docker_as(dockerd, config, "push", ref)
    dockerd.cli("rmi", ref, DOCKER_ARCHIVE_TAG)
    assert not _in_daemon(dockerd, test_images.image.config.digest)
    return ref


@dataclass(frozen=True)
class PrivateImage:
    """``OWNER/private:v1`` (the busybox image ``image_id``), pushed by its owner, and a
    requester: another user, signed in to docker in their own config folder."""

    registry: RunningRegistry
    dockerd: DockerDaemon
    image_id: str
    owner: str
    ref: str
    requester: str
    requester_config: Path

    @property
    def repository(self) -> str:
        return f"{self.owner}/private"

    @contextlib.contextmanager
    def apis(self) -> Iterator[tuple[Api, Api]]:
        """``/api/v1`` as the requester and as the owner."""
        with (
            Api.connect(self.registry, self.requester, PASSWORD) as requester_api,
            Api.connect(self.registry, self.owner, PASSWORD) as owner_api,
        ):
            yield requester_api, owner_api

    def assert_requester_pull_denied(self) -> None:
        denied = docker_as(self.dockerd, self.requester_config, "pull", self.ref, check=False)
        assert not denied.ok, f"docker pull {self.ref} succeeded"
        assert PULL_DENIED.format(repository=self.ref.rsplit(":", 1)[0]) in denied.stderr, denied.stderr
        assert not _in_daemon(self.dockerd, self.image_id)

    def requester_pulls_and_runs(self) -> tuple[str, str]:
        """The requester's ``docker pull``, then ``docker run`` (cat the test file): the
        pulled image's ID and the output. The daemon keeps no copy afterwards."""
        docker_as(self.dockerd, self.requester_config, "pull", self.ref)
        pulled: str = json.loads(self.dockerd.cli("image", "inspect", self.ref).stdout)[0]["Id"]
        output = self.dockerd.cli("run", "--rm", "--network", "none", self.ref, "cat", HELLO_PATH).stdout
        self.dockerd.cli("rmi", self.ref)
        assert not _in_daemon(self.dockerd, self.image_id)
        return pulled, output


@pytest.fixture
def image(
    token_registry: RunningRegistry,
    dockerd: DockerDaemon,
    test_images: TestImages,
    admin: Api,
    image_id: str,
    tmp_path: Path,
) -> PrivateImage:
    owner, requester = unique("owner"), unique("requester")
    admin.create_user(owner)
    admin.create_user(requester)
    ref = _owner_pushes(dockerd, test_images, token_registry, owner, tmp_path / "owner")
    requester_config = tmp_path / "requester"
    login = docker_login(dockerd, requester_config, token_registry.host, requester, PASSWORD)
    assert "Login Succeeded" in login.stdout
    return PrivateImage(token_registry, dockerd, image_id, owner, ref, requester, requester_config)


def _request_pull(requester_api: Api, repository: str) -> dict[str, Any]:
    """The requester asks for pull access (with ``REASON``); the new request."""
    created: dict[str, Any] = requester_api.call(
        "POST",
        "/access-requests",
        201,
        json={"repository": repository, "action": "pull", "message": REASON},
    )
    return created


def _pending(owner_api: Api, workspace: str) -> list[dict[str, Any]]:
    """The workspace's pending requests, as its owner lists them."""
    found: list[dict[str, Any]] = owner_api.call(
        "GET", "/access-requests", params={"workspace": workspace, "status": "pending"}
    )
    return found


def _notifications(api: Api, kind: str, request_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        note
        for note in api.call("GET", "/notifications")
        if note["kind"] == kind and note["payload"].get("request_id") == request_id
    ]
    return found


def _end_grants_of_request(registry: RunningRegistry, request_id: int) -> int:
    """Set ``expires_at`` of the request's grant to now in the server's database; rows changed."""
    now = time.time()
    if registry.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(registry.data_dir / "dockyard.db", timeout=30)) as db, db:
            cursor = db.execute(
                "UPDATE repository_grants SET expires_at = ? WHERE request_id = ?", (now, request_id)
            )
        asyncio.run(announce_auth_change(registry))
        return cursor.rowcount

    async def update() -> int:
        conn = await asyncpg.connect(registry.database_url.replace("+asyncpg", "", 1))
        try:
            status: str = await conn.execute(
                "UPDATE repository_grants SET expires_at = $1 WHERE request_id = $2", now, request_id
            )
        finally:
            await conn.close()
        await announce_auth_change(registry)
        return int(status.split()[-1])

    return asyncio.run(update())


def test_an_approved_request_lets_docker_pull_until_the_grant_ends(image: PrivateImage) -> None:
    image.assert_requester_pull_denied()

    with image.apis() as (requester_api, owner_api):
        created = _request_pull(requester_api, image.repository)
        request_id = int(created["id"])
        assert (created["status"], created["requester"], created["workspace"]) == (
            "pending",
            image.requester,
            image.owner,
        )

        pending = _pending(owner_api, image.owner)
        assert [(r["id"], r["repository"], r["requester"], r["action"], r["message"]) for r in pending] == [
            (request_id, image.repository, image.requester, "pull", REASON)
        ]
        assert _notifications(owner_api, "access_request.created", request_id), "the owner was not notified"

        before = time.time()
        approved = owner_api.call(
            "POST",
            f"/access-requests/{request_id}/approve",
            json={"action": "pull", "expires_in_days": 1, "note": "approved for the pipeline"},
        )
        assert approved["request"]["status"] == "approved"
        assert approved["request"]["decided_by"] == image.owner
        assert (approved["grant"]["username"], approved["grant"]["action"]) == (image.requester, "pull")
        assert approved["grant"]["request_id"] == request_id
        expires_at = float(approved["grant"]["expires_at"])
        assert before + 86400 <= expires_at <= time.time() + 86400
        assert _pending(owner_api, image.owner) == []

        [note] = _notifications(requester_api, "access_request.approved", request_id)
        assert note["payload"] == {
            "request_id": request_id,
            "repository": image.repository,
            "action": "pull",
            "expires_at": expires_at,
            "note": "approved for the pipeline",
        }
        assert note["read"] is False

    # The same login (docker keeps its refresh token) now pulls and runs the image.
    assert image.requester_pulls_and_runs() == (image.image_id, HELLO_TEXT)

    # The grant ends: the next pull (which must fetch, the image is gone locally) is refused.
    assert _end_grants_of_request(image.registry, request_id) == 1
    image.assert_requester_pull_denied()


def test_a_rejected_request_is_notified_and_docker_pull_stays_denied(image: PrivateImage) -> None:
    image.assert_requester_pull_denied()

    with image.apis() as (requester_api, owner_api):
        request_id = int(_request_pull(requester_api, image.repository)["id"])
        assert [r["id"] for r in _pending(owner_api, image.owner)] == [request_id]

        rejected = owner_api.call(
            "POST", f"/access-requests/{request_id}/reject", json={"note": "ask the release team instead"}
        )
        assert (rejected["status"], rejected["decided_by"]) == ("rejected", image.owner)
        assert rejected["grant_expires_at"] is None

        [note] = _notifications(requester_api, "access_request.rejected", request_id)
        assert note["payload"] == {
            "request_id": request_id,
            "repository": image.repository,
            "note": "ask the release team instead",
        }
        assert _notifications(requester_api, "access_request.approved", request_id) == []
        [mine] = requester_api.call("GET", "/access-requests", params={"mine": "true"})
        assert (mine["id"], mine["status"], mine["decision_note"]) == (
            request_id,
            "rejected",
            "ask the release team instead",
        )

    image.assert_requester_pull_denied()
