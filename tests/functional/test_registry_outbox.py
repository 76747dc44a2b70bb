"""The registry's outbox, on a Dockyard of its own (SQLite and PostgreSQL): a push that was
acknowledged reaches the catalog and the audit log even when the server dies before either
heard of it.

The server's test seam ``DOCKYARD_TEST_OUTBOX_GATE`` leaves every event to the outbox loop,
which creates ``started`` in a folder and waits for ``open`` before applying it: the test
pushes (acknowledged), sees the loop holding the event, kills the server (SIGKILL), opens the
gate and starts it again. The version and the audit row must then exist, once each. A signature
pushed while the loop holds the events is checked when they are applied (the version exists).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.catalog import CatalogUser, gzip_layer, image_config, new_user
from tests.support.cosign import ecdsa_key, payload, public_pem, push_signature, sign
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.oci import oci_manifest
from tests.support.servers import kill_hard, private_dockyard

TOKEN_MODE = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}
DEADLINE = 60.0


def wait_for(check: Any, what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < end, f"{what} did not happen within {deadline}s"
        time.sleep(0.05)


def test_a_push_acknowledged_before_a_crash_reaches_the_catalog_and_the_audit_log(
    db_kind: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**TOKEN_MODE, "DOCKYARD_TEST_OUTBOX_GATE": str(gate)}
    manifest = oci_manifest(image_config("amd64"), [gzip_layer("outbox")])
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, restart):
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push("lab/durable", manifest, "v1")  # acknowledged
        wait_for((gate / "started").exists, "the outbox loop reaching the event")
        with CatalogUser.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            assert admin.api.call("GET", "/images/lab/durable/versions/v1", expect=404)
            pushes = admin.api.call("GET", "/audit", params={"action": "manifest.push"})
            assert pushes == []

        kill_hard(server)
        (gate / "open").touch()
        again = restart()

        with CatalogUser.connect(again, ADMIN, ADMIN_PASSWORD) as admin:

            def applied() -> Any:
                return admin.api.call("GET", "/audit", params={"action": "manifest.push"})

            pushes = wait_for(applied, "the audit row of the push")
            assert [(e["target"], e["actor_name"]) for e in pushes] == [
                (f"lab/durable@{manifest.digest}", ADMIN)
            ]
            version = admin.version("lab/durable", "v1")
            assert version["digest"] == manifest.digest
            history = [e["kind"] for e in admin.events("lab/durable")]
            assert history.count("pushed") == 1


def test_a_signature_pushed_while_the_outbox_waits_is_verified_once_it_is_applied(
    db_kind: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**TOKEN_MODE, "DOCKYARD_TEST_OUTBOX_GATE": str(gate)}
    key = ecdsa_key()
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, _restart):
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            owner = new_user(admin, "signer")
        image = f"{owner}/signed"
        with CatalogUser.connect(server, owner) as own, oci_as(server, owner, PASSWORD) as oci:
            own.api.call(
                "POST",
                f"/workspaces/{owner}/trusted-keys",
                201,
                json={"name": "release", "pem": public_pem(key)},
            )
            manifest = oci_manifest()
            oci.push(image, manifest, "1.0")
            data = payload(f"{server.host}/{image}", manifest.digest)
            push_signature(oci, image, manifest.digest, data, sign(key, data))
            wait_for((gate / "started").exists, "the outbox loop reaching the events")
            assert own.api.call("GET", f"/images/{image}/versions/1.0", expect=404)

            (gate / "open").touch()

            def verified() -> Any:
                found = own.http.get(f"/images/{image}/versions/1.0")
                return found.status_code == 200 and found.json()["marks"]["signature"] == "verified"

            wait_for(verified, "the signature check of the version")
