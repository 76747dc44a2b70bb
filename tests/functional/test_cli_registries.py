"""``dockyard registry``: add, list, show, check (the failure's reason and the profile to fix),
remove, run as a user runs them against a token-mode server and htpasswd upstreams on loopback."""

from __future__ import annotations

from pathlib import Path

from tests.functional.test_cli_identity import Cli
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, unique
from tests.support.servers import RunningRegistry
from tests.support.upstreams import closed_port, start_upstream_registry


def test_the_registry_commands(token_registry: RunningRegistry, tmp_path: Path) -> None:
    admin = Cli(token_registry, tmp_path / "admin" / "cli.toml")
    admin.login(ADMIN, ADMIN_PASSWORD)
    name = unique("regs")
    admin.ok("user", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    cli = Cli(token_registry, tmp_path / "owner" / "cli.toml")
    cli.login(name, PASSWORD)
    upstream = start_upstream_registry(tmp_path / "upstream", {"bob": "bob-secret"})
    try:
        host = upstream.host
        added = cli.ok(
            "registry", "add", name, "--host", host, "--username", "bob", "--secret-stdin", stdin="nope\n"
        )
        assert "kind:" in added
        assert "distribution" in added
        (profile,) = cli.json("registry", "list", name)
        assert (profile["registry"], profile["username"]) == (host, "bob")
        assert "nope" not in cli.ok("registry", "show", name, "--host", host)

        failed = cli.fails("registry", "check", name, "--host", host)
        assert f"unauthorized: {host} refused bob access" in failed
        assert f"check the registry profile {host} (workspace" in failed

        cli.ok(
            "registry",
            "add",
            name,
            "--host",
            host,
            "--username",
            "bob",
            "--secret-stdin",
            stdin="bob-secret\n",
        )
        assert f"{host}: login works (http, with the profile {host} (workspace" in cli.ok(
            "registry", "check", name, "--host", host
        )

        stopped = f"127.0.0.1:{closed_port()}"
        cli.ok("registry", "add", name, "--host", stopped)
        assert "unreachable: could not reach" in cli.fails("registry", "check", name, "--host", stopped)

        assert "administrator" in cli.fails("registry", "add", "--platform", "--host", "mirror.example.org")
        assert "plain HTTP" in cli.fails("registry", "add", name, "--host", "r.example.org", "--plain-http")
        assert f"Removed the registry profile for {host}." in cli.ok(
            "registry", "remove", name, "--host", host
        )
        assert host not in cli.ok("registry", "list", name)
    finally:
        upstream.stop()
