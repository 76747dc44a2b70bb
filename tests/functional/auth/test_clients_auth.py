"""The real clients sign in to Dockyard in token mode and push and pull as a user sees it.

Each client keeps its credentials in its own folder (docker: ``DOCKER_CONFIG``; podman,
skopeo, buildah: ``REGISTRY_AUTH_FILE``; ctr: ``--user`` on the command line; oras-py: on
the client object). Users, workspaces and robots are set up through ``/api/v1`` as the
admin; repositories are private unless said otherwise, so an anonymous client must be
turned away exactly as it would be for a repository that does not exist.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import (
    Buildah,
    ContainerdDaemon,
    DockerDaemon,
    Podman,
    Skopeo,
    containers_login,
    containers_logout,
    docker_as,
    docker_login,
    make_oras_client,
    make_oras_client_as,
)
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.images import DOCKER_ARCHIVE_TAG, HELLO_PATH, HELLO_TEXT, IMAGE_TAG, TestImages
from tests.support.servers import RunningRegistry, request_lines

pytestmark = pytest.mark.clients

DOCKER_PULL_DENIED = "pull access denied"
DOCKER_MAY_REQUIRE_LOGIN = "repository does not exist or may require 'docker login'"
# What docker and containers/image print for a 401 with error="insufficient_scope": they turn
# the challenge's error into DENIED (distribution's client HandleErrorResponse) and add the
# body's UNAUTHORIZED error.
DENIED = "denied: requested access to the resource is denied"
INSUFFICIENT_SCOPE = "unauthorized: insufficient scope"


@pytest.fixture
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


def _new_user(admin: Api, label: str) -> str:
    name = unique(label)
    admin.create_user(name)
    return name


def _docker_auths(config_dir: Path) -> dict[str, Any]:
    auths: dict[str, Any] = json.loads((config_dir / "config.json").read_text()).get("auths", {})
    return auths


def _docker_push(dockerd: DockerDaemon, config_dir: Path, test_images: TestImages, ref: str) -> str:
    """Load the busybox image, tag it ``ref``, push it with the credentials in ``config_dir``;
    return the pushed manifest digest. The local tags are removed afterwards."""
    dockerd.cli("load", "--input", str(test_images.docker_archive))
    dockerd.cli("tag", DOCKER_ARCHIVE_TAG, ref)
    pushed = docker_as(dockerd, config_dir, "push", ref).stdout
    match = re.search(r": digest: (sha256:[0-9a-f]{64}) size: \d+", pushed)
    assert match, pushed
    dockerd.cli("rmi", ref, DOCKER_ARCHIVE_TAG)
    _assert_not_in_daemon(dockerd, test_images)
    return match.group(1)


def _assert_not_in_daemon(dockerd: DockerDaemon, test_images: TestImages) -> None:
    image_id = test_images.image.config.digest
    assert not dockerd.cli("image", "inspect", image_id, check=False).ok, "image still present after rmi"


def _remove_from_daemon(dockerd: DockerDaemon, test_images: TestImages) -> None:
    dockerd.cli("rmi", "--force", test_images.image.config.digest, check=False)


def _tags(registry: RunningRegistry, repository: str) -> list[str]:
    with oci_as(registry, ADMIN, ADMIN_PASSWORD) as oci:
        return oci.all_tags(repository)


def _pulled_config_digest(
    registry: RunningRegistry, repository: str, tag: str, user: str, secret: str
) -> str:
    with oci_as(registry, user, secret) as oci:
        response = oci.get_manifest(repository, tag)
        assert response.status_code == 200, (
            f"{repository}:{tag}: {response.status_code} {response.text[:200]}"
        )
        digest: str = response.json()["config"]["digest"]
        return digest


# --------------------------------------------------------------------------- docker


def test_docker_login_push_pull_logout_then_anonymous_pull_is_denied(
    token_registry: RunningRegistry,
    dockerd: DockerDaemon,
    test_images: TestImages,
    admin: Api,
    tmp_path: Path,
) -> None:
    host = token_registry.host
    user = _new_user(admin, "docker")
    config = tmp_path / "docker-config"
    ref = f"{host}/{user}/app:v1"
    image_id = test_images.image.config.digest
    try:
        login = docker_login(dockerd, config, host, user, PASSWORD)
        assert "Login Succeeded" in login.stdout

        # docker login asks the token realm for a token with offline_token=true and
        # client_id=docker; Dockyard answers with a refresh_token, which the daemon hands
        # back to the CLI as an identity token. The CLI then stores that identity token in
        # config.json instead of the password (``auth`` holds only "user:"), and later pushes
        # and pulls POST grant_type=refresh_token to the realm.
        entry = _docker_auths(config)[host]
        assert base64.b64decode(entry["auth"]).decode() == f"{user}:"
        refresh_token = entry["identitytoken"]
        assert refresh_token.startswith("dyr_")
        assert PASSWORD not in json.dumps(entry)
        # It is a refresh token Dockyard honours (oauth.md: POST grant_type=refresh_token).
        exchanged = httpx.post(
            f"{token_registry.url}/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "service": "dockyard",
                "client_id": "docker",
                "scope": f"repository:{user}/app:pull,push",
            },
            timeout=30,
        )
        assert exchanged.status_code == 200, exchanged.text
        assert exchanged.json()["scope"] == f"repository:{user}/app:pull,push"

        digest = _docker_push(dockerd, config, test_images, ref)

        docker_as(dockerd, config, "pull", ref)
        inspected = json.loads(dockerd.cli("image", "inspect", ref).stdout)[0]
        assert inspected["Id"] == image_id
        assert f"{host}/{user}/app@{digest}" in inspected["RepoDigests"]
        assert dockerd.cli("run", "--rm", "--network", "none", ref, "cat", HELLO_PATH).stdout == HELLO_TEXT

        logout = docker_as(dockerd, config, "logout", host)
        assert f"Removing login credentials for {host}" in logout.stdout
        assert host not in _docker_auths(config)

        # Signed out, the private repository is refused exactly like a missing one.
        dockerd.cli("rmi", ref)
        _assert_not_in_daemon(dockerd, test_images)
        for missing in (ref, f"{host}/{user}/no-such-repository:v1"):
            denied = docker_as(dockerd, config, "pull", missing, check=False)
            assert not denied.ok, f"anonymous docker pull of {missing} succeeded"
            assert DOCKER_PULL_DENIED in denied.stderr, denied.stderr
            assert DOCKER_MAY_REQUIRE_LOGIN in denied.stderr, denied.stderr
            assert DENIED in denied.stderr, denied.stderr
        _assert_not_in_daemon(dockerd, test_images)
    finally:
        _remove_from_daemon(dockerd, test_images)


def test_docker_push_by_a_reader_is_refused(
    token_registry: RunningRegistry,
    dockerd: DockerDaemon,
    test_images: TestImages,
    admin: Api,
    tmp_path: Path,
) -> None:
    host = token_registry.host
    workspace = unique("readers")
    admin.create_workspace(workspace)
    developer, reader = _new_user(admin, "developer"), _new_user(admin, "reader")
    admin.set_member(workspace, developer, "developer")
    admin.set_member(workspace, reader, "reader")
    developer_config, reader_config = tmp_path / "developer", tmp_path / "reader"
    repository = f"{workspace}/app"
    try:
        docker_login(dockerd, developer_config, host, developer, PASSWORD)
        _docker_push(dockerd, developer_config, test_images, f"{host}/{repository}:v1")

        docker_login(dockerd, reader_config, host, reader, PASSWORD)
        docker_as(dockerd, reader_config, "pull", f"{host}/{repository}:v1")
        dockerd.cli("tag", f"{host}/{repository}:v1", f"{host}/{repository}:by-reader")
        refused = docker_as(dockerd, reader_config, "push", f"{host}/{repository}:by-reader", check=False)
        assert not refused.ok, "a reader's docker push succeeded"
        # The token the reader gets carries pull only; the upload is answered 401
        # error="insufficient_scope".
        assert DENIED in refused.stderr, refused.stderr
        assert INSUFFICIENT_SCOPE in refused.stderr, refused.stderr
        assert _tags(token_registry, repository) == ["v1"]
    finally:
        _remove_from_daemon(dockerd, test_images)


# --------------------------------------------------------------------------- podman, skopeo, buildah


def test_podman_login_push_pull_and_a_wrong_password_is_refused(
    token_registry: RunningRegistry, podman: Podman, test_images: TestImages, admin: Api
) -> None:
    host = token_registry.host
    user = _new_user(admin, "podman")
    ref = f"{host}/{user}/podman:v1"
    auth_file = Path(podman.env["REGISTRY_AUTH_FILE"])

    wrong = containers_login(podman, host, user, "not-the-password", check=False)
    assert not wrong.ok, "podman login with a wrong password succeeded"
    assert "invalid username/password" in wrong.stderr, wrong.stderr
    assert host not in json.loads(auth_file.read_text())["auths"]

    login = containers_login(podman, host, user, PASSWORD)
    assert "Login Succeeded" in login.stdout
    assert host in json.loads(auth_file.read_text())["auths"]

    image_id = podman.pull(test_images.image_ref)
    podman.tag(image_id, ref)
    podman.push(ref)
    assert _pulled_config_digest(token_registry, f"{user}/podman", "v1", user, PASSWORD) == (
        test_images.image.config.digest
    )

    podman.rmi(image_id)
    assert podman.image_ids() == []
    assert podman.pull(ref) == image_id
    assert podman.run(ref, "cat", HELLO_PATH) == HELLO_TEXT

    containers_logout(podman, host)
    podman.rmi(image_id)
    anonymous = podman("pull", "--quiet", "--tls-verify=false", ref, check=False)
    assert not anonymous.ok, "anonymous podman pull of a private repository succeeded"
    assert DENIED in anonymous.stderr, anonymous.stderr
    assert INSUFFICIENT_SCOPE in anonymous.stderr, anonymous.stderr


def test_skopeo_login_copy_and_inspect_without_credentials_fails(
    token_registry: RunningRegistry, skopeo: Skopeo, test_images: TestImages, admin: Api
) -> None:
    host = token_registry.host
    user = _new_user(admin, "skopeo")
    ref = f"docker://{host}/{user}/skopeo:v1"

    assert "Login Succeeded" in containers_login(skopeo, host, user, PASSWORD).stdout
    skopeo.copy(test_images.image_ref, ref)
    assert skopeo.inspect_raw(ref) == test_images.blob(test_images.image.manifest.digest)
    containers_logout(skopeo, host)

    # Signed out: refused; with --creds on the command line: served.
    anonymous = skopeo("inspect", "--tls-verify=false", ref, check=False)
    assert not anonymous.ok, "anonymous skopeo inspect of a private repository succeeded"
    assert DENIED in anonymous.stderr, anonymous.stderr
    inspected = json.loads(
        skopeo("inspect", "--tls-verify=false", "--creds", f"{user}:{PASSWORD}", ref).stdout
    )
    assert inspected["Digest"] == test_images.image.manifest.digest


def test_buildah_login_and_push(
    token_registry: RunningRegistry, buildah: Buildah, test_images: TestImages, admin: Api
) -> None:
    host = token_registry.host
    user = _new_user(admin, "buildah")
    assert "Login Succeeded" in containers_login(buildah, host, user, PASSWORD).stdout
    image_id = buildah.pull(test_images.image_ref)
    buildah.push(image_id, f"docker://{host}/{user}/buildah:v1")
    assert _pulled_config_digest(token_registry, f"{user}/buildah", "v1", user, PASSWORD) == (
        test_images.image.config.digest
    )
    containers_logout(buildah, host)
    refused = buildah(
        "push", "--quiet", "--tls-verify=false", image_id, f"docker://{host}/{user}/buildah:v2", check=False
    )
    assert not refused.ok, "an anonymous buildah push succeeded"
    assert DENIED in refused.stderr, refused.stderr
    assert _tags(token_registry, f"{user}/buildah") == ["v1"]


# --------------------------------------------------------------------------- containerd


def _token_requests_between(registry: RunningRegistry, start: float, end: float) -> list[tuple[str, int]]:
    """(method, status) of the /auth/token requests the server answered between two instants
    (all of them: its request lines are in the log)."""
    return [
        (str(entry["method"]), int(entry["status"]))
        for entry in request_lines(registry)
        if entry["path"] == "/auth/token" and start <= entry["ts"] <= end
    ]


def test_ctr_pushes_and_pulls_with_a_password_and_with_a_robot_token(
    token_registry: RunningRegistry, containerd: ContainerdDaemon, test_images: TestImages, admin: Api
) -> None:
    host = token_registry.host
    workspace = unique("ctr")
    admin.create_workspace(workspace)
    user = _new_user(admin, "ctr")
    admin.set_member(workspace, user, "developer")
    admin.create_robot(workspace, "builder")
    admin.set_robot_permission(workspace, "builder", "developer")
    robot = f"{workspace}+builder"
    robot_token = admin.robot_token(workspace, "builder", ["pull", "push"])
    base = f"{host}/{workspace}/ctr"
    image = f"{base}:{IMAGE_TAG}"
    by_robot = f"{base}:robot"

    importer = containerd.new_namespace()
    containerd.ctr(importer, "images", "import", "--base-name", base, str(test_images.oci_archive))
    containerd.ctr(importer, "images", "push", "--plain-http", "--user", f"{user}:{PASSWORD}", image)
    assert _pulled_config_digest(token_registry, f"{workspace}/ctr", IMAGE_TAG, user, PASSWORD) == (
        test_images.image.config.digest
    )

    anonymous = containerd.ctr(
        containerd.new_namespace(), "images", "pull", "--plain-http", image, check=False
    )
    assert not anonymous.ok, "anonymous ctr pull of a private repository succeeded"
    # The anonymous token carries no access; the retried request gets 401 insufficient_scope.
    assert "pull access denied, repository does not exist or may require authorization" in anonymous.stderr

    # With a secret, containerd asks for its token with an OAuth2 POST (grant_type=password,
    # client_id=containerd-client) and only falls back to GET with Basic if that fails.
    # (Checked at the end of the test, when the server has written these log lines.)
    pull_started = time.time()
    puller = containerd.new_namespace()
    containerd.ctr(puller, "images", "pull", "--plain-http", "--user", f"{user}:{PASSWORD}", image)
    pull_ended = time.time()
    run_id = unique("run")
    assert containerd.ctr(puller, "run", "--rm", image, run_id, "cat", HELLO_PATH).stdout == HELLO_TEXT

    # A robot account: login name "workspace+robot", its token as the password.
    containerd.ctr(importer, "images", "tag", image, by_robot)
    containerd.ctr(importer, "images", "push", "--plain-http", "--user", f"{robot}:{robot_token}", by_robot)
    robot_puller = containerd.new_namespace()
    containerd.ctr(
        robot_puller, "images", "pull", "--plain-http", "--user", f"{robot}:{robot_token}", by_robot
    )
    listed = containerd.ctr(robot_puller, "images", "ls", "--quiet").stdout.split()
    assert listed == [by_robot]
    assert sorted(_tags(token_registry, f"{workspace}/ctr")) == sorted([IMAGE_TAG, "robot"])

    wrong_user = f"{robot}:dyk_wrong"
    wrong = containerd.ctr(
        containerd.new_namespace(),
        "images",
        "pull",
        "--plain-http",
        "--user",
        wrong_user,
        by_robot,
        check=False,
    )
    assert not wrong.ok, "ctr pull with a wrong robot token succeeded"
    assert "failed to fetch oauth token" in wrong.stderr, wrong.stderr

    token_requests = _token_requests_between(token_registry, pull_started, pull_ended)
    assert token_requests, "ctr pulled without asking for a token"
    assert set(token_requests) == {("POST", 200)}, token_requests


# --------------------------------------------------------------------------- oras-py


def test_oras_basic_backend_pushes_and_pulls(
    token_registry: RunningRegistry, admin: Api, tmp_path: Path
) -> None:
    host = token_registry.host
    user = _new_user(admin, "oras")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"private notes pushed by oras-py\n")
    target = f"{host}/{user}/notes:v1"

    client = make_oras_client_as(host, user, PASSWORD, auth_backend="basic")
    response = client.push(
        target=target, files=[f"{notes}:text/plain"], disable_path_validation=True, quiet=True
    )
    assert response.status_code == 201
    [pulled] = client.pull(target=target, outdir=str(tmp_path / "pulled"))
    assert Path(pulled).read_bytes() == notes.read_bytes()

    anonymous = make_oras_client(host)
    with pytest.raises(ValueError, match="Unauthorized"):
        anonymous.pull(target=target, outdir=str(tmp_path / "anonymous"))


def test_oras_with_default_settings_pushes_and_pulls(
    token_registry: RunningRegistry, admin: Api, tmp_path: Path
) -> None:
    host = token_registry.host
    user = _new_user(admin, "orasdefault")
    stranger = _new_user(admin, "orasother")
    # oras-py's defaults: the token backend. On its first 401 it fetches a token for the
    # challenge's scope (a blob HEAD: pull only) and then keeps it, retrying any later 401
    # with the same token; it asks for a new one only on a 403. Dockyard answers 403 with
    # the challenge to a token narrower than its holder's rights, so the push goes on.
    client = make_oras_client_as(host, user, PASSWORD, auth_backend="token")
    pushed: dict[str, bytes] = {}
    for name in ("first", "second"):
        path = tmp_path / f"{name}.txt"
        path.write_bytes(f"{name} artifact pushed by oras-py\n".encode())
        response = client.push(
            target=f"{host}/{user}/{name}:v1",
            files=[f"{path}:text/plain"],
            disable_path_validation=True,
            quiet=True,
        )
        assert response.status_code == 201
        pushed[name] = path.read_bytes()
    # The same client pulls both back, moving from one private repository to the other.
    for name, content in pushed.items():
        [pulled] = client.pull(target=f"{host}/{user}/{name}:v1", outdir=str(tmp_path / f"pulled-{name}"))
        assert Path(pulled).read_bytes() == content
    # Where the user may not push, a new token would not help: 401, and oras-py gives up.
    refused = tmp_path / "refused.txt"
    refused.write_bytes(b"not allowed here\n")
    with pytest.raises(ValueError, match=r"Issue retrieving session url"):
        client.push(
            target=f"{host}/{stranger}/intrusion:v1",
            files=[f"{refused}:text/plain"],
            disable_path_validation=True,
            quiet=True,
        )


# --------------------------------------------------------------------------- robots across clients


def test_a_robot_token_pushes_with_podman_and_pulls_with_docker(
    token_registry: RunningRegistry,
    podman: Podman,
    dockerd: DockerDaemon,
    test_images: TestImages,
    admin: Api,
    tmp_path: Path,
) -> None:
    host = token_registry.host
    workspace = unique("robots")
    admin.create_workspace(workspace)
    admin.create_robot(workspace, "deployer")
    admin.set_robot_permission(workspace, "deployer", "developer")
    robot = f"{workspace}+deployer"
    secret = admin.robot_token(workspace, "deployer", ["pull", "push"])
    ref = f"{host}/{workspace}/service:v1"

    assert "Login Succeeded" in containers_login(podman, host, robot, secret).stdout
    image_id = podman.pull(test_images.image_ref)
    podman.tag(image_id, ref)
    podman.push(ref)

    config = tmp_path / "docker-robot"
    try:
        assert "Login Succeeded" in docker_login(dockerd, config, host, robot, secret).stdout
        docker_as(dockerd, config, "pull", ref)
        inspected = json.loads(dockerd.cli("image", "inspect", ref).stdout)[0]
        assert inspected["Id"] == test_images.image.config.digest
        assert dockerd.cli("run", "--rm", "--network", "none", ref, "cat", HELLO_PATH).stdout == HELLO_TEXT
    finally:
        _remove_from_daemon(dockerd, test_images)
