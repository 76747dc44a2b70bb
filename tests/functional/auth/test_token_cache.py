"""The token endpoint's per-process cache of token logins and their grants never outlives a
change: a revocation, a member's removal and a visibility change hold from the very next token
request, in every worker process (each asked directly through its sibling socket, after its
cache was warmed with the same request)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import databases
from tests.support.identity import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    jwt_claims,
    oci_as,
    start_token_dockyard,
    unique,
)
from tests.support.oci import image_config, oci_manifest, random_blob
from tests.support.servers import RunningRegistry, postgres_database
from tests.support.servers import worker_sockets as each_worker_socket

WORKERS = 3


@pytest.fixture(scope="module", params=databases())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    kind: str = request.param
    base = tmp_path_factory.mktemp(f"token-cache-{kind}")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if kind == "postgres" else ""
        running = start_token_dockyard(kind, base, url, {"DOCKYARD_WORKERS": str(WORKERS)})
        stack.callback(running.stop)
        yield running


def worker_sockets(registry: RunningRegistry) -> list[Path]:
    return each_worker_socket(registry, expected=WORKERS)


def pull_actions(
    registry: RunningRegistry, login: str, secret: str, repository: str
) -> list[int | list[str]]:
    """Each worker's answer to the same token request: its status, or the actions granted."""
    answers: list[int | list[str]] = []
    for path in worker_sockets(registry):
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(base_url="http://worker", transport=transport, timeout=30) as http:
            response = http.get(
                "/auth/token",
                params={"service": "dockyard", "scope": f"repository:{repository}:pull"},
                auth=(login, secret),
            )
        if response.status_code != 200:
            answers.append(response.status_code)
            continue
        access = jwt_claims(response.json()["token"])["access"]
        answers.append(sorted(access[0]["actions"]) if access else [])
    return answers


def warm(registry: RunningRegistry, login: str, secret: str, repository: str) -> list[int | list[str]]:
    """The answers of every worker, asked twice (the second from its cache) and the same."""
    first = pull_actions(registry, login, secret, repository)
    assert pull_actions(registry, login, secret, repository) == first
    return first


def pushed_repository(registry: RunningRegistry, workspace: str) -> str:
    repository = f"{workspace}/app"
    with oci_as(registry, ADMIN, ADMIN_PASSWORD) as oci:
        oci.push(repository, oci_manifest(image_config(), [random_blob()]), "v1")
    return repository


def test_a_revoked_robot_token_is_refused_by_every_worker_at_once(server: RunningRegistry) -> None:
    workspace = unique("cache-robot")
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_workspace(workspace)
        repository = pushed_repository(server, workspace)
        admin.create_robot(workspace, "ci")
        admin.set_robot_permission(workspace, "ci", "reader")
        secret = admin.robot_token(workspace, "ci", ["pull"])
        login = f"{workspace}+ci"
        assert warm(server, login, secret, repository) == [["pull"]] * WORKERS
        robot_tokens = admin.call("GET", f"/workspaces/{workspace}/robots/ci/tokens")
        token_id = robot_tokens[0]["id"]
        admin.call("DELETE", f"/workspaces/{workspace}/robots/ci/tokens/{token_id}", 204)
    assert pull_actions(server, login, secret, repository) == [401] * WORKERS


def test_a_revoked_personal_token_is_refused_by_every_worker_at_once(server: RunningRegistry) -> None:
    user = unique("cache-pat")
    workspace = unique("cache-pat-ws")
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(user)
        admin.create_workspace(workspace)
        admin.set_member(workspace, user, "reader")
        repository = pushed_repository(server, workspace)
    with Api.connect(server, user, PASSWORD) as api:
        token_id, secret = api.personal_token(["pull"])
        assert warm(server, user, secret, repository) == [["pull"]] * WORKERS
        api.revoke_token(token_id)
    assert pull_actions(server, user, secret, repository) == [401] * WORKERS


def test_a_removed_member_loses_access_in_every_worker_at_once(server: RunningRegistry) -> None:
    user = unique("cache-member")
    workspace = unique("cache-member-ws")
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(user)
        admin.create_workspace(workspace)
        admin.set_member(workspace, user, "reader")
        repository = pushed_repository(server, workspace)
        with Api.connect(server, user, PASSWORD) as api:
            _, secret = api.personal_token(["pull"])
        assert warm(server, user, secret, repository) == [["pull"]] * WORKERS
        admin.call("DELETE", f"/workspaces/{workspace}/members/{user}", 204)
        assert pull_actions(server, user, secret, repository) == [[]] * WORKERS
        admin.set_member(workspace, user, "reader")
        assert pull_actions(server, user, secret, repository) == [["pull"]] * WORKERS


def test_a_visibility_change_holds_in_every_worker_at_once(server: RunningRegistry) -> None:
    outsider = unique("cache-outsider")
    workspace = unique("cache-vis-ws")
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(outsider)
        admin.create_workspace(workspace)
        repository = pushed_repository(server, workspace)
        with Api.connect(server, outsider, PASSWORD) as api:
            _, secret = api.personal_token(["pull"])
        assert warm(server, outsider, secret, repository) == [[]] * WORKERS
        admin.set_visibility(repository, "public")
        assert warm(server, outsider, secret, repository) == [["pull"]] * WORKERS
        admin.set_visibility(repository, "private")
        assert pull_actions(server, outsider, secret, repository) == [[]] * WORKERS
