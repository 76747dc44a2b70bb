"""Webhooks (#18): a workspace's maintainer adds a receiver; pushes (skopeo, and a plain
Distribution client) reach it as signed CloudEvents, in order per repository, retried while it
is down, never lost when the server is killed between answering the push and delivering, and
cut off when it is slow. Receivers on loopback need an admin's allowance."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.archives import Uploads, oci_archive
from tests.support.clients import Skopeo, containers_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, start_token_dockyard, unique
from tests.support.images import TestImages
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry, kill_hard, postgres_database, server_workers
from tests.support.webhooks import Received, Receiver, wait_until

pytestmark = pytest.mark.clients

NOT_ALLOWED = "which an administrator has not allowed (DOCKYARD_OUTBOUND_ALLOW)"


def verified(secret: str, got: Received) -> bool:
    """What a receiver does, written from the README (not from the server's code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(time.time() - int(got.headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, s) for s in got.headers["webhook-signature"].split())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


@pytest.fixture
def owner(token_registry: RunningRegistry) -> Iterator[tuple[str, Api]]:
    name = unique("hooks")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(name)
    with Api.connect(token_registry, name, PASSWORD) as api:
        yield name, api


@pytest.fixture
def org(owner: tuple[str, Api]) -> tuple[str, Api, str]:
    """The owner, their API client, and a new organisation workspace they own."""
    user, api = owner
    name = unique("org")
    api.create_workspace(name)
    return user, api, name


def _database(db_kind: str) -> contextlib.AbstractContextManager[str]:
    return postgres_database() if db_kind == "postgres" else contextlib.nullcontext("")


def subjects(received: list[Received]) -> list[str]:
    return [r.event["subject"] for r in received if r.event["type"] != "org.dockyard.webhook.ping"]


def test_pushes_reach_the_receiver_signed_in_order_and_after_it_was_down(
    token_registry: RunningRegistry,
    owner: tuple[str, Api],
    receiver: Receiver,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    name, api = owner
    hook = api.call("POST", f"/workspaces/{name}/webhooks", 201, json={"url": receiver.url})
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert hook["events"] == []
    assert hook["enabled"]
    assert "secret" not in api.call("GET", f"/workspaces/{name}/webhooks/{hook['id']}")

    # skopeo pushes an image: one image.pushed event, signed, CloudEvents structured mode.
    skopeo = Skopeo(tmp_path / "skopeo")
    containers_login(skopeo, token_registry.host, name, PASSWORD)
    skopeo.copy(test_images.image_ref, f"docker://{token_registry.host}/{name}/tool:1.0")
    (got,) = receiver.wait_for(lambda r: len(r) >= 1)
    assert got.headers["content-type"] == "application/cloudevents+json"
    assert verified(secret, got)
    assert not verified("whsec_" + base64.b64encode(b"x" * 32).decode(), got)
    event = got.event
    assert event["specversion"] == "1.0"
    assert event["type"] == "org.dockyard.image.pushed"
    assert event["subject"] == f"{name}/tool:1.0"
    assert event["id"] == got.headers["webhook-id"]
    assert event["datacontenttype"] == "application/json"
    assert event["time"].endswith("Z")
    assert event["source"].startswith("http")
    assert event["data"]["repository"] == f"{name}/tool"
    assert event["data"]["tag"] == "1.0"
    assert event["data"]["actor"] == name
    assert event["data"]["digest"].startswith("sha256:")

    # Two repositories, pushed in turns: each one's events arrive in the order pushed.
    with oci_as(token_registry, name, PASSWORD) as oci:
        for i in range(5):
            for repo in ("a", "b"):
                assert oci.push(f"{name}/{repo}", oci_manifest(), f"v{i}").status_code == 201
    received = receiver.wait_for(lambda r: len(r) >= 11)
    assert all(verified(secret, r) for r in received)
    for repo in ("a", "b"):
        assert [s for s in subjects(received) if s.startswith(f"{name}/{repo}:")] == [
            f"{name}/{repo}:v{i}" for i in range(5)
        ]

    # The receiver goes down: the delivery log shows the failed attempt, and after it comes back
    # the events arrive, in order, the earlier first.
    receiver.stop()
    log = f"/workspaces/{name}/webhooks/{hook['id']}/deliveries"
    with oci_as(token_registry, name, PASSWORD) as oci:
        oci.push(f"{name}/a", oci_manifest(), "down-1")
        oci.push(f"{name}/a", oci_manifest(), "down-2")
    failed = wait_until(
        lambda: [d for d in api.call("GET", log, params={"state": "pending"}) if d["attempts"] >= 1],
        what="a failed attempt in the log",
    )
    assert failed[-1]["subject"] == f"{name}/a:down-1"
    assert failed[-1]["status_code"] is None
    assert failed[-1]["error"]
    assert failed[-1]["next_attempt_at"] > failed[-1]["last_attempt_at"]
    before = len(receiver.events())
    receiver.start()
    received = receiver.wait_for(lambda r: len(r) >= before + 2, timeout=90)
    assert subjects(received)[-2:] == [f"{name}/a:down-1", f"{name}/a:down-2"]
    # Each event once, although every server process runs a delivery loop.
    assert len(server_workers(token_registry)) >= 2
    assert len({r.headers["webhook-id"] for r in received}) == len(received)

    # The delivery log: newest first, paged with before=, status codes of each attempt.
    first_page = api.call("GET", log, params={"limit": 5})
    assert [d["subject"] for d in first_page[:2]] == [f"{name}/a:down-2", f"{name}/a:down-1"]
    assert first_page[1]["state"] == "delivered"
    assert first_page[1]["status_code"] == 204
    assert first_page[1]["attempts"] >= 2
    next_page = api.call("GET", log, params={"limit": 5, "before": first_page[-1]["id"]})
    assert [d["id"] for d in next_page] == sorted((d["id"] for d in next_page), reverse=True)
    assert next_page[0]["id"] < first_page[-1]["id"]
    total = len(api.call("GET", log, params={"limit": 500}))
    assert total == len(received)

    # The test button: a ping, answered with its outcome.
    ping = api.call("POST", f"/workspaces/{name}/webhooks/{hook['id']}/test")
    assert ping["state"] == "delivered"
    assert ping["status_code"] == 204
    assert ping["type"].endswith(".ping")
    assert verified(secret, receiver.events()[-1])


def test_only_maintainers_manage_webhooks_and_filters_choose_the_events(
    token_registry: RunningRegistry, org: tuple[str, Api, str], receiver: Receiver
) -> None:
    user, api, name = org
    developer = unique("dev")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(developer)
    api.set_member(name, developer, "developer")
    path = f"/workspaces/{name}/webhooks"
    hook = api.call("POST", path, 201, json={"url": receiver.url, "events": ["tag.deleted"]})
    with Api.connect(token_registry, developer, PASSWORD) as dev:
        for method, where in (("GET", path), ("GET", f"{path}/{hook['id']}/deliveries")):
            refused = dev.http.request(method, where)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
        assert dev.http.post(path, json={"url": receiver.url}).status_code == 403
        assert dev.http.post(f"{path}/{hook['id']}/test").status_code == 403
    assert api.http.get(path, auth=None).status_code == 401
    bad = api.http.post(path, json={"url": receiver.url, "events": ["nope"]})
    assert bad.status_code == 422
    assert "unknown event 'nope'" in bad.json()["detail"]
    assert api.http.post(path, json={"url": "ftp://example.org/x"}).status_code == 422
    assert api.http.post(path, json={"url": "http://u:p@example.org/x"}).status_code == 422
    assert api.http.get(f"{path}/2147483648").status_code == 422

    # Only tag deletions are wanted: the push is not sent, the delete is.
    with oci_as(token_registry, user, PASSWORD) as oci:
        assert oci.push(f"{name}/f", oci_manifest(), "gone").status_code == 201
        assert oci.http.delete(f"/v2/{name}/f/manifests/gone").status_code == 202
    (got,) = receiver.wait_for(lambda r: len(r) >= 1)
    assert got.event["type"] == "org.dockyard.tag.deleted"
    assert got.event["subject"] == f"{name}/f:gone"
    # A redirect is not followed (it could lead anywhere): the attempt fails with its status.
    elsewhere = Receiver().start()
    try:
        receiver.status, receiver.location = 307, elsewhere.url
        redirected = api.call("POST", f"{path}/{hook['id']}/test")
        assert (redirected["state"], redirected["status_code"]) == ("failed", 307)
        assert redirected["error"] == "the receiver answered 307"
        assert elsewhere.events() == []
    finally:
        elsewhere.stop()
    changed = api.call("PATCH", f"{path}/{hook['id']}", json={"enabled": False})
    assert changed["enabled"] is False
    assert changed["events"] == ["tag.deleted"]
    api.call("DELETE", f"{path}/{hook['id']}", 204)
    assert api.http.get(f"{path}/{hook['id']}").status_code == 404
    assert api.call("GET", path) == []


def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_ends(
    token_registry: RunningRegistry, org: tuple[str, Api, str], receiver: Receiver
) -> None:
    _user, api, name = org
    path = f"/workspaces/{name}/webhooks"
    hook = api.call("POST", path, 201, json={"url": receiver.url})
    old = hook["secret"]

    rotated = api.call("POST", f"{path}/{hook['id']}/rotate-secret", json={"grace_hours": 2})
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated["secret_rotated_at"] is not None
    assert rotated["previous_secret_until"] > time.time() + 7000
    shown = api.call("GET", f"{path}/{hook['id']}")
    assert "secret" not in shown
    assert shown["previous_secret_until"] == rotated["previous_secret_until"]
    # During the grace an event verifies with either secret: a receiver switches when it likes.
    api.call("POST", f"{path}/{hook['id']}/test")
    during = receiver.events()[-1]
    assert verified(new, during)
    assert verified(old, during)

    # Rotated again with no grace: only the newest secret signs.
    newest = api.call("POST", f"{path}/{hook['id']}/rotate-secret", json={"grace_hours": 0})
    assert newest["previous_secret_until"] is None
    api.call("POST", f"{path}/{hook['id']}/test")
    after = receiver.events()[-1]
    assert verified(newest["secret"], after)
    assert not verified(new, after)
    assert not verified(old, after)

    # Bounded, and for maintainers only.
    for grace in (-1, 169, 1.5, "NaN"):
        refused = api.http.post(f"{path}/{hook['id']}/rotate-secret", json={"grace_hours": grace})
        assert refused.status_code == 422, (grace, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    developer = unique("dev")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(developer)
    api.set_member(name, developer, "developer")
    with Api.connect(token_registry, developer, PASSWORD) as dev:
        assert dev.http.post(f"{path}/{hook['id']}/rotate-secret").status_code == 403
    assert api.http.post(f"{path}/999999/rotate-secret").status_code == 404


def test_no_event_lost_when_the_server_is_killed_and_slow_receivers_are_cut_off(
    db_kind: str, tmp_path: Path, receiver: Receiver, test_images: TestImages
) -> None:
    env = {
        "DOCKYARD_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "DOCKYARD_WEBHOOK_TIMEOUT_SECONDS": "1",
        "DOCKYARD_WEBHOOK_POLL_SECONDS": "0.2",
    }
    with _database(db_kind) as database_url:
        server = start_token_dockyard(db_kind, tmp_path / "a", database_url, env)
        try:
            with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
                admin.create_workspace("lab")
                hook = admin.call("POST", "/workspaces/lab/webhooks", 201, json={"url": receiver.url})
            receiver.stop()  # nothing can be delivered before the kill
            skopeo = Skopeo(tmp_path / "skopeo")
            containers_login(skopeo, server.host, ADMIN, ADMIN_PASSWORD)
            skopeo.copy(test_images.image_ref, f"docker://{server.host}/lab/crash:1")
            kill_hard(server)  # right after the push's answer
        finally:
            server.stop()
        receiver.start()
        server = start_token_dockyard(db_kind, tmp_path / "a", database_url, env)
        try:
            (got,) = receiver.wait_for(lambda r: len(r) >= 1)
            assert got.event["subject"] == "lab/crash:1"
            assert verified(hook["secret"], got)

            # A receiver slower than the limit is cut off: the attempt fails after about a second.
            receiver.delay = 3.0
            with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
                started = time.monotonic()
                ping = admin.call("POST", f"/workspaces/lab/webhooks/{hook['id']}/test")
                took = time.monotonic() - started
            assert ping["state"] == "failed"
            assert ping["error"] == "no answer within 1 seconds"
            assert 900 <= ping["duration_ms"] < 2500
            assert took < 2.9
        finally:
            server.stop()


def test_a_receiver_on_loopback_needs_an_admins_allowance(db_kind: str, tmp_path: Path) -> None:
    with _database(db_kind) as database_url:
        server = start_token_dockyard(db_kind, tmp_path, database_url, {"DOCKYARD_OUTBOUND_ALLOW": ""})
        try:
            with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
                admin.create_workspace("lab")
                for url in ("http://127.0.0.1:9/hook", "http://localhost:9/x", "http://10.1.2.3/x"):
                    refused = admin.http.post("/workspaces/lab/webhooks", json={"url": url})
                    assert refused.status_code == 422, refused.text
                    assert NOT_ALLOWED in refused.json()["detail"]
                assert admin.call("GET", "/workspaces/lab/webhooks") == []
        finally:
            server.stop()


def test_imports_access_requests_and_catalog_deletes_are_told_too(
    token_registry: RunningRegistry, org: tuple[str, Api, str], receiver: Receiver
) -> None:
    user, api, name = org
    hook = api.call("POST", f"/workspaces/{name}/webhooks", 201, json={"url": receiver.url})
    asker = unique("asker")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(asker)

    # An archive import (then the version it becomes, a push), an access request and its approval.
    session = Uploads(api.http).upload(name, oci_archive([b"layer one"], "app:1.0"))
    created = Uploads(api.http).create(session["id"], workspace=name, name="app", version="1.0").json()
    assert created["version"] == "1.0"
    with Api.connect(token_registry, asker, PASSWORD) as them:
        request = them.call("POST", "/access-requests", 201, json={"repository": f"{name}/app"})
    api.call("POST", f"/access-requests/{request['id']}/approve", json={"expires_in_days": 1})
    # Deletes through the catalog: a version, then the image with its repository.
    with oci_as(token_registry, user, PASSWORD) as oci:
        assert oci.push(f"{name}/app", oci_manifest(), "2.0").status_code == 201
    api.call("DELETE", f"/images/{name}/app/versions/2.0", 204)
    api.call("DELETE", "/repository", 204, params={"name": f"{name}/app"})

    received = receiver.wait_for(lambda r: len(r) >= 7)
    assert all(verified(hook["secret"], r) for r in received)
    told = [(r.event["type"].removeprefix("org.dockyard."), r.event["subject"]) for r in received]
    (imported,) = [r.event for r in received if r.event["type"] == "org.dockyard.import.finished"]
    assert imported["subject"] == f"archives/{session['id']}"
    assert imported["data"]["status"] == "done"
    # In order for the repository (not across repositories): what happened to it, one after another.
    assert [t for t in told if t[0] != "import.finished"] == [
        ("image.pushed", f"{name}/app:1.0"),
        ("access.requested", f"{name}/app/access-requests/{request['id']}"),
        ("access.approved", f"{name}/app/access-requests/{request['id']}"),
        ("image.pushed", f"{name}/app:2.0"),
        ("version.deleted", f"{name}/app:2.0"),
        ("repository.deleted", f"{name}/app"),
    ]
    (approved,) = [r.event["data"] for r in received if r.event["type"].endswith("access.approved")]
    assert approved["requester"] == asker
    assert approved["status"] == "approved"
    assert approved["decided_by"] == user
