"""``dockyard webhook``: add, list, show, test, read the delivery log, switch off and remove,
run as a user runs them against a token-mode server and a real receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.test_cli_identity import Cli
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, oci_as, unique
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry
from tests.support.webhooks import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def test_the_webhook_commands(token_registry: RunningRegistry, tmp_path: Path, receiver: Receiver) -> None:
    admin = Cli(token_registry, tmp_path / "admin" / "cli.toml")
    admin.login(ADMIN, ADMIN_PASSWORD)
    name, stranger = unique("hooker"), unique("stranger")
    for user in (name, stranger):
        admin.ok("user", "create", user, "--password-stdin", stdin=PASSWORD + "\n")
    cli = Cli(token_registry, tmp_path / "owner" / "cli.toml")
    cli.login(name, PASSWORD)

    added = cli.run("webhook", "add", name, receiver.url, "--event", "image.pushed", "--description", "CI")
    assert added.returncode == 0, added.stderr
    assert "secret:      whsec_" in added.stdout
    assert "not shown again" in added.stderr
    (hook,) = cli.json("webhook", "list", name)
    assert hook["url"] == receiver.url
    assert hook["events"] == ["image.pushed"]
    assert "secret" not in hook
    listed = cli.ok("webhook", "list", name)
    assert receiver.url in listed
    assert "image.pushed" in listed
    assert f"url:         {receiver.url}" in cli.ok("webhook", "show", name, str(hook["id"]))

    assert "Delivered: the receiver answered 204" in cli.ok("webhook", "test", name, str(hook["id"]))
    receiver.status = 500
    assert "the test event was not delivered: 500" in cli.fails("webhook", "test", name, str(hook["id"]))
    receiver.status = 204
    with oci_as(token_registry, name, PASSWORD) as oci:
        assert oci.push(f"{name}/cli", oci_manifest(), "1").status_code == 201
    receiver.wait_for(lambda r: any(x.event["subject"] == f"{name}/cli:1" for x in r))

    log = cli.json("webhook", "deliveries", name, str(hook["id"]))
    assert [(d["type"], d["status_code"]) for d in log[1:]] == [
        ("org.dockyard.webhook.ping", 500),
        ("org.dockyard.webhook.ping", 204),
    ]
    assert log[0]["subject"] == f"{name}/cli:1"
    table = cli.ok("webhook", "deliveries", name, str(hook["id"]), "--state", "failed")
    assert "webhook.ping" in table
    assert "500" in table
    assert "image.pushed" not in table

    rotated = cli.run("webhook", "rotate-secret", name, str(hook["id"]), "--grace-hours", "3")
    assert rotated.returncode == 0, rotated.stderr
    assert "secret:      whsec_" in rotated.stdout
    assert "the old secret signs too until" in rotated.stdout
    assert "before the grace ends" in rotated.stderr
    assert "the old secret signs too until" in cli.ok("webhook", "show", name, str(hook["id"]))
    too_long = cli.run("webhook", "rotate-secret", name, str(hook["id"]), "--grace-hours", "169")
    assert too_long.returncode == 2
    assert "Invalid value for '--grace-hours'" in too_long.stderr

    assert "is disabled" in cli.ok("webhook", "disable", name, str(hook["id"]))
    assert cli.json("webhook", "show", name, str(hook["id"]))["enabled"] is False
    outsider = Cli(token_registry, tmp_path / "stranger" / "cli.toml")
    outsider.login(stranger, PASSWORD)
    assert "maintainer role" in outsider.fails("webhook", "list", name)
    assert "is not an http:// or https:// URL" in cli.fails("webhook", "add", name, "file:///etc/passwd")
    assert "unknown event 'push'" in cli.fails("webhook", "add", name, receiver.url, "--event", "push")
    assert "Removed webhook" in cli.ok("webhook", "remove", name, str(hook["id"]))
    assert "not found" in cli.fails("webhook", "show", name, str(hook["id"]))
    assert "No webhooks." in cli.ok("webhook", "list", name)
