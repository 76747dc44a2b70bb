"""Connections on a user's behalf go only where an admin allowed (DOCKYARD_OUTBOUND_ALLOW), as a
signed-in user sees it over /api/v1.

``refusing`` is a Dockyard with no allowance: verifying an external image on a loopback,
private or link-local registry, or saving a build that would clone from or push to one, is
refused with the reason and without any connection. ``allowing`` allows exactly one loopback
port (an nginx in front of a docker-registry): the same verification works there, while the
registry's own port, and a redirect from the allowed port to another one, stay refused.

Both servers' proxy variables point at the ``guard`` canary: a server that connected after all
(one still honouring them) would connect there, so the 10.0.0.1 and 169.254.169.254 cases
never leave the machine, and each test checks that the canary saw no connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.catalog import CatalogUser, Json, new_user, problem
from tests.support.clients import Skopeo
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard
from tests.support.outbound import Canary, canary, proxy_env
from tests.support.servers import RunningRegistry
from tests.support.upstreams import (
    Nginx,
    UpstreamImages,
    build_upstream_images,
    start_nginx,
    start_upstream_registry,
)

pytestmark = pytest.mark.clients

NOT_ALLOWED = "which an administrator has not allowed (DOCKYARD_OUTBOUND_ALLOW)"


@pytest.fixture(scope="module")
def guard() -> Iterator[Canary]:
    with canary() as found:
        yield found


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory, guard: Canary) -> Iterator[RunningRegistry]:
    env = {"DOCKYARD_OUTBOUND_ALLOW": "", **proxy_env(guard)}
    server = start_token_dockyard("sqlite", tmp_path_factory.mktemp("refusing"), extra_env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def user(refusing: RunningRegistry) -> Iterator[CatalogUser]:
    with Api.connect(refusing, ADMIN, ADMIN_PASSWORD) as admin:
        name = new_user(admin, "outbound")
    with CatalogUser.connect(refusing, name) as found:
        yield found


def verified(user: CatalogUser, reference: str) -> Json:
    created = user.register(user.name, reference)
    checked = user.verify(created["image"], created["version"])
    return {"image": created["image"], **checked}


def refusal(shown: str) -> str:
    return f"refused: {shown}, {NOT_ALLOWED}"


# --------------------------------------------------------------------------- verifying external images


@pytest.mark.parametrize(
    ("reference", "shown"),
    [
        ("127.0.0.1:5432/x/y:1", "destination 127.0.0.1 is a loopback address"),
        ("127.0.0.1:{guard}/x/y:1", "destination 127.0.0.1 is a loopback address"),
        ("localhost:{guard}/x/y:1", "destination localhost resolves to a loopback address"),
        ("[::1]:{guard}/x/y:1", "destination ::1 is a loopback address"),
    ],
)
def test_verifying_a_loopback_registry_is_refused_before_connecting(
    user: CatalogUser, guard: Canary, reference: str, shown: str
) -> None:
    checked = verified(user, reference.format(guard=guard.port))

    assert checked["status"] == "unreachable"
    assert checked["status_reason"] == refusal(shown)
    assert checked["digest"] is None
    resolved = user.http.get(f"/images/{checked['image']}/versions/1/resolve")
    assert problem(resolved, 409) == f"{checked['image']}:1 cannot be run: unreachable ({refusal(shown)})"
    assert guard.accepted == 0


def test_verifying_private_and_link_local_registries_is_refused_before_connecting(
    user: CatalogUser, guard: Canary
) -> None:
    # First a loopback one: only a server that refuses it unconnected is asked about the others.
    first = verified(user, f"127.0.0.1:{guard.port}/guard/g:1")
    assert first["status_reason"] == refusal("destination 127.0.0.1 is a loopback address")
    assert guard.accepted == 0

    for reference, shown in [
        ("10.0.0.1/x:1", "destination 10.0.0.1 is a private address"),
        ("169.254.169.254/latest/meta-data:1", "destination 169.254.169.254 is a link-local address"),
        ("100.64.0.1/c/y:1", "destination 100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("[fd00::1]/u/v:1", "destination fd00::1 is a private address"),
    ]:
        checked = verified(user, reference)
        assert (checked["status"], checked["status_reason"]) == ("unreachable", refusal(shown)), reference
    assert guard.accepted == 0


# --------------------------------------------------------------------------- builds


def test_a_build_cloning_from_a_loopback_repository_is_refused_when_saved(
    user: CatalogUser, guard: Canary
) -> None:
    for url, shown in [
        (f"http://127.0.0.1:{guard.port}/repo.git", "destination 127.0.0.1 is a loopback address"),
        (f"git://localhost:{guard.port}/repo.git", "destination localhost resolves to a loopback address"),
        ("git@169.254.169.254:repo.git", "destination 169.254.169.254 is a link-local address"),
    ]:
        body = {"workspace": user.name, "name": "tool", "context": "git", "git": {"url": url, "ref": "main"}}
        response = user.http.post("/builds", json=body)
        assert problem(response, 422) == f"cannot clone {url}: {shown}, {NOT_ALLOWED}"
    assert user.http.get(f"/workspaces/{user.name}/builds").json() == []
    assert guard.accepted == 0


def test_a_build_pushing_to_a_loopback_registry_is_refused_when_saved(
    user: CatalogUser, guard: Canary, refusing: RunningRegistry
) -> None:
    destination = f"127.0.0.1:{guard.port}/mirror/tool"
    body = {"workspace": user.name, "name": "tool", "dockerfile": "FROM scratch\n"}
    response = user.http.post("/builds", json={**body, "external_destination": destination})
    assert problem(response, 422) == (
        f"cannot push to {destination}: destination 127.0.0.1 is a loopback address, {NOT_ALLOWED}"
    )

    user.api.call("POST", "/builds", 201, json=body)
    changed = user.http.patch(f"/builds/{user.name}/tool", json={"external_destination": destination})
    assert problem(changed, 422).startswith(f"cannot push to {destination}: destination 127.0.0.1")
    moved = user.http.patch(
        f"/builds/{user.name}/tool",
        json={"context": "git", "git": {"url": f"https://localhost:{guard.port}/x.git", "ref": "main"}},
    )
    assert problem(moved, 422).endswith(
        f"destination localhost resolves to a loopback address, {NOT_ALLOWED}"
    )
    assert user.api.call("GET", f"/builds/{user.name}/tool")["external_destination"] is None
    # Someone who may not see the definition learns nothing more from a refused destination.
    with Api.connect(refusing, ADMIN, ADMIN_PASSWORD) as admin:
        outsider = new_user(admin, "outsider")
    with Api.connect(refusing, outsider, PASSWORD) as stranger:
        probed = stranger.http.patch(f"/builds/{user.name}/tool", json={"external_destination": destination})
    assert problem(probed, 404) == f"build definition '{user.name}/tool' not found"
    assert guard.accepted == 0


# --------------------------------------------------------------------------- with an allowance


@dataclass(frozen=True)
class Allowing:
    server: RunningRegistry
    upstream: RunningRegistry
    front: Nginx  # the one allowed port
    images: UpstreamImages


@pytest.fixture(scope="module")
def allowing(tmp_path_factory: pytest.TempPathFactory, guard: Canary) -> Iterator[Allowing]:
    base: Path = tmp_path_factory.mktemp("allowing")
    images = build_upstream_images(base / "images")
    upstream = start_upstream_registry(base / "upstream")
    try:
        Skopeo(base / "skopeo").copy(
            images.ref("amd64"), f"docker://{upstream.host}/library/amd:v1", extra=["--preserve-digests"]
        )
        front = start_nginx(
            base / "nginx",
            {
                "front": f"    location /v2/moved/ {{ return 307 http://{guard.host}$request_uri; }}\n"
                f"    location / {{ proxy_pass http://{upstream.host}; proxy_set_header Host $http_host; }}"
            },
        )
        try:
            env = {"DOCKYARD_OUTBOUND_ALLOW": front.host("front"), **proxy_env(guard)}
            server = start_token_dockyard("sqlite", base / "dockyard", extra_env=env)
            try:
                yield Allowing(server, upstream, front, images)
            finally:
                server.stop()
        finally:
            front.stop()
    finally:
        upstream.stop()


@pytest.fixture
def allowed_user(allowing: Allowing) -> Iterator[CatalogUser]:
    with Api.connect(allowing.server, ADMIN, ADMIN_PASSWORD) as admin:
        name = new_user(admin, "allowed")
    with CatalogUser.connect(allowing.server, name) as found:
        yield found


def test_an_allowed_registry_is_verified(
    allowed_user: CatalogUser, allowing: Allowing, guard: Canary
) -> None:
    checked = verified(allowed_user, f"{allowing.front.host('front')}/library/amd:v1")

    assert (checked["status"], checked["status_reason"]) == ("reachable", None)
    assert checked["digest"] == allowing.images.amd64.manifest.digest
    assert guard.accepted == 0


def test_an_allowance_for_one_port_leaves_the_others_refused(
    allowed_user: CatalogUser, allowing: Allowing, guard: Canary
) -> None:
    checked = verified(allowed_user, f"{allowing.upstream.host}/library/amd:v1")

    assert checked["status_reason"] == refusal("destination 127.0.0.1 is a loopback address")
    assert guard.accepted == 0


def test_a_redirect_from_an_allowed_registry_to_a_refused_one_is_refused(
    allowed_user: CatalogUser, allowing: Allowing, guard: Canary
) -> None:
    checked = verified(allowed_user, f"{allowing.front.host('front')}/moved/tool:1")

    assert checked["status"] == "unreachable"
    assert checked["status_reason"] == refusal("destination 127.0.0.1 is a loopback address")
    assert guard.accepted == 0
    # The allowed port was asked, and answered with the redirect that was not followed.
    access_log = allowing.front.base / "access.log"
    deadline = time.monotonic() + 10
    while '"GET /v2/moved/tool/manifests/1 HTTP/1.1" 307' not in access_log.read_text():
        assert time.monotonic() < deadline, access_log.read_text()
        time.sleep(0.05)
