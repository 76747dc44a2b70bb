"""The identity and access commands of the ``dockyard`` CLI, run as a user runs them: as
subprocesses with their own config file, against a token-mode server. What they set up is
then checked through the registry itself (pushes and pulls with the logins they made)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, oci_as, unique
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry


@dataclass
class Cli:
    """``python -m dockyard`` with one config file (one logged-in person)."""

    registry: RunningRegistry
    config: Path

    def run(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**base, "DOCKYARD_CLI_CONFIG": str(self.config), "COLUMNS": "200", **(env or {})},
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
        done = self.run(*args, stdin=stdin, env=env)
        assert done.returncode == 0, (
            f"dockyard {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
        """Runs a command that must fail; its stderr (one readable message, no traceback)."""
        done = self.run(*args, stdin=stdin, env=env)
        assert done.returncode != 0, f"dockyard {' '.join(args)} succeeded:\n{done.stdout}"
        assert "error:" in done.stderr, done.stderr
        return done.stderr

    def login(self, username: str, password: str) -> None:
        self.ok("login", self.registry.url, "-u", username, "--password-stdin", stdin=password + "\n")

    def stored(self) -> dict[str, Any]:
        return tomllib.loads(self.config.read_text())


CliFactory = Callable[..., Cli]


@pytest.fixture
def cli(token_registry: RunningRegistry, tmp_path: Path) -> CliFactory:
    """``cli()`` -> a not-yet-logged-in CLI; ``cli(user, password)`` -> one logged in."""
    count = 0

    def make(username: str | None = None, password: str = PASSWORD) -> Cli:
        nonlocal count
        count += 1
        made = Cli(token_registry, tmp_path / f"person-{count}" / "cli.toml")
        if username is not None:
            made.login(username, password)
        return made

    return make


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The first admin, logged in once per server."""
    made = Cli(token_registry, tmp_path_factory.mktemp("admin") / "cli.toml")
    made.login(ADMIN, ADMIN_PASSWORD)
    return made


def new_user(admin: Cli, label: str) -> str:
    name = unique(label)
    admin.ok("user", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    return name


def kid_of(jwt: str) -> str:
    header = jwt.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def registry_token(registry: RunningRegistry, username: str, secret: str, scope: str) -> httpx.Response:
    return httpx.get(
        f"{registry.url}/auth/token",
        params={"service": "dockyard", "scope": scope},
        auth=(username, secret),
        timeout=30,
    )


def test_login_stores_a_token_never_the_password(cli: CliFactory, token_registry: RunningRegistry) -> None:
    me = cli()
    message = me.fails("login", token_registry.url, "-u", ADMIN, "--password-stdin", stdin="wrong-password\n")
    assert "wrong username or password" in message
    assert not me.config.exists()

    me.login(ADMIN, ADMIN_PASSWORD)
    assert stat.S_IMODE(me.config.stat().st_mode) == 0o600
    assert ADMIN_PASSWORD not in me.config.read_text()
    stored = me.stored()
    assert stored["url"] == token_registry.url
    assert stored["username"] == ADMIN
    assert stored["token"].startswith("dyk_")
    assert me.ok("whoami").strip() == f"{ADMIN} (admin) on {token_registry.url}"
    tokens = me.json("token", "list")
    mine = next(t for t in tokens if t["id"] == stored["token_id"])
    assert mine["name"].startswith("cli@")
    assert sorted(mine["scopes"]) == ["api", "delete", "pull", "push"]

    # DOCKYARD_URL and DOCKYARD_TOKEN stand in for a config file.
    elsewhere = cli()
    env = {"DOCKYARD_URL": token_registry.url, "DOCKYARD_TOKEN": stored["token"]}
    who = json.loads(elsewhere.ok("whoami", "--json", env=env))
    assert who["username"] == ADMIN
    # Without them there is no server to talk to, and the message says what to do.
    assert "dockyard login" in elsewhere.fails("whoami")


def test_logout_revokes_the_token(admin: Cli, cli: CliFactory, token_registry: RunningRegistry) -> None:
    name = new_user(admin, "leaver")
    me = cli(name)
    token = me.stored()["token"]
    assert me.ok("whoami").startswith(name)

    assert "Logged out" in me.ok("logout")
    assert "token" not in me.stored()
    message = me.fails("whoami")
    assert "log in" in message
    with_old_token = {"DOCKYARD_URL": token_registry.url, "DOCKYARD_TOKEN": token}
    assert "revoked" in me.fails("whoami", env=with_old_token)
    assert registry_token(token_registry, name, token, "repository:x/y:pull").status_code == 401
    assert "Not logged in" in me.ok("logout")


def test_personal_tokens_create_list_revoke(
    admin: Cli, cli: CliFactory, token_registry: RunningRegistry
) -> None:
    name = new_user(admin, "tokens")
    me = cli(name)

    shown = me.ok("token", "create", "laptop", "--scope", "pull", "--expires-days", "7")
    secret = next(word for word in shown.split() if word.startswith("dyk_"))
    assert "shown only now" in shown
    listed = {t["name"]: t for t in me.json("token", "list")}
    assert listed["laptop"]["scopes"] == ["pull"]
    assert listed["laptop"]["expires_at"] is not None
    assert registry_token(token_registry, name, secret, f"repository:{name}/x:pull").status_code == 200
    # A pull-only token is no key to the API.
    assert "api" in me.fails("whoami", env={"DOCKYARD_TOKEN": secret})

    me.ok("token", "revoke", str(listed["laptop"]["id"]))
    assert next(t for t in me.json("token", "list") if t["name"] == "laptop")["revoked"] is True
    assert registry_token(token_registry, name, secret, f"repository:{name}/x:pull").status_code == 401
    assert "no token 999999" in me.fails("token", "revoke", "999999")


def test_users_and_passwords(admin: Cli, cli: CliFactory) -> None:
    name = new_user(admin, "passwd")
    me = cli(name)
    assert "only admins" in me.fails("user", "create", unique("x"), "--password-stdin", stdin=PASSWORD + "\n")
    users = {u["username"]: u for u in admin.json("user", "list")}
    assert users[name]["is_admin"] is False
    assert [u["username"] for u in admin.json("user", "list", "--search", name.upper())] == [name]

    assert "wrong username or password" in me.fails(
        "user", "passwd", "--password-stdin", stdin="not-my-password\nnew-password-1\n"
    )
    base_check = f"{me.registry.url}/v2/"
    for _ in range(4):  # Basic checks are cached per server process; warm every worker's cache
        assert httpx.get(base_check, auth=(name, PASSWORD), timeout=30).status_code == 200
    me.ok("user", "passwd", "--password-stdin", stdin=f"{PASSWORD}\nnew-password-1\n")
    for _ in range(4):  # the old password stops working at once, cache or not
        assert httpx.get(base_check, auth=(name, PASSWORD), timeout=30).status_code == 401
    cli(name, "new-password-1")
    assert "wrong username or password" in cli().fails(
        "login", me.registry.url, "-u", name, "--password-stdin", stdin=PASSWORD + "\n"
    )
    # An admin sets someone else's password without knowing the old one.
    admin.ok("user", "passwd", name, "--password-stdin", stdin="new-password-2\n")
    cli(name, "new-password-2")

    admin.ok("user", "disable", name)
    assert {u["username"]: u for u in admin.json("user", "list")}[name]["disabled"] is True
    assert "wrong username or password" in cli().fails(
        "login", me.registry.url, "-u", name, "--password-stdin", stdin="new-password-2\n"
    )
    admin.ok("user", "enable", name)
    cli(name, "new-password-2")


def test_workspace_members_teams_robots(admin: Cli, cli: CliFactory, token_registry: RunningRegistry) -> None:
    owner_name, dev_name = new_user(admin, "owner"), new_user(admin, "dev")
    owner = cli(owner_name)
    ws, team, bot = unique("lab"), unique("team"), unique("bot")

    owner.ok("workspace", "create", ws, "--description", "The [bold]lab[/bold]")
    shown = owner.ok("workspace", "show", ws)
    assert "The [bold]lab[/bold]" in shown  # user text is not read as markup
    assert owner.json("workspace", "show", ws)["default_visibility"] == "private"
    assert ws in [w["name"] for w in owner.json("workspace", "list", "--mine")]

    owner.ok("member", "add", ws, dev_name, "--role", "reader")
    assert {m["username"]: m["role"] for m in owner.json("member", "list", ws)}[dev_name] == "reader"
    assert "role" in owner.fails("member", "add", ws, dev_name, "--role", "emperor")
    owner.ok("team", "create", ws, team)
    owner.ok("team", "add", ws, team, dev_name)
    owner.ok("team", "role", ws, team, "developer")
    listed = {t["name"]: t for t in owner.json("team", "list", ws)}
    assert listed[team]["members"] == [dev_name]
    assert listed[team]["permissions"] == [[None, "developer"]]

    # The team's developer role lets the reader push.
    with oci_as(token_registry, dev_name, PASSWORD) as dev:
        assert dev.push(f"{ws}/by-team", oci_manifest(), "v1").status_code == 201
    owner.ok("team", "role", ws, team, "none")
    owner.ok("team", "remove", ws, team, dev_name)
    owner.ok("team", "delete", ws, team)
    owner.ok("member", "remove", ws, dev_name)
    assert dev_name not in [m["username"] for m in owner.json("member", "list", ws)]

    # A robot with a token pushes and pulls as WORKSPACE+NAME.
    owner.ok("robot", "create", ws, bot)
    owner.ok("robot", "grant", ws, bot, "developer")
    human = owner.ok("robot", "token", ws, bot, "--scope", "pull", "--scope", "push")
    assert f"Login:  {ws}+{bot}" in human
    first_secret = next(word for word in human.split() if word.startswith("dyk_"))
    assert f"docker login {token_registry.host} -u '{ws}+{bot}' --password-stdin" in human
    created = owner.json("robot", "token", ws, bot, "--scope", "pull", "--scope", "push", "--name", "ci-2")
    assert created["login"] == f"{ws}+{bot}"
    manifest = oci_manifest()
    with oci_as(token_registry, created["login"], created["secret"]) as robot:
        assert robot.push(f"{ws}/app", manifest, "v1").status_code == 201
        assert robot.get_manifest(f"{ws}/app", "v1").content == manifest.body
    robots = {r["login"]: r for r in owner.json("robot", "list", ws)}
    assert robots[f"{ws}+{bot}"]["permissions"] == [[None, "developer"]]
    assert len(owner.json("robot", "tokens", ws, bot)) == 2

    # Visibility: private until a maintainer makes it public.
    repos = {r["name"]: r for r in owner.json("repo", "list", "--workspace", ws)}
    assert repos[f"{ws}/app"]["visibility"] == "private"
    with oci_as(token_registry, None) as anonymous:
        assert anonymous.get_manifest(f"{ws}/app", "v1").status_code == 401
        assert "public" in owner.ok("repo", "visibility", f"{ws}/app", "public")
        assert anonymous.get_manifest(f"{ws}/app", "v1").status_code == 200
    assert owner.json("repo", "show", f"{ws}/app")["visibility"] == "public"
    developer = cli(dev_name)
    assert "not found" in developer.fails("repo", "show", f"{ws}/by-team")

    # A robot token revoked is dead at once; a deleted robot cannot log in.
    owner.ok("robot", "revoke", ws, bot, str(created["info"]["id"]))
    assert (
        registry_token(
            token_registry, created["login"], created["secret"], f"repository:{ws}/app:pull"
        ).status_code
        == 401
    )
    assert (
        registry_token(
            token_registry, created["login"], first_secret, f"repository:{ws}/app:pull"
        ).status_code
        == 200
    )
    owner.ok("robot", "delete", ws, bot)
    assert (
        registry_token(
            token_registry, created["login"], first_secret, f"repository:{ws}/app:pull"
        ).status_code
        == 401
    )

    # The workspace's audit log shows what was done; outsiders may not read it.
    actions = {e["action"] for e in owner.json("audit", "--workspace", ws, "--limit", "200")}
    assert {"workspace.create", "member.set", "team.create", "robot.create", "robot.token.create"} <= actions
    assert {"repository.visibility", "robot.token.revoke", "robot.delete"} <= actions
    assert "only admins" in owner.fails("audit")
    assert "error:" in developer.fails("audit", "--workspace", ws)

    # An empty workspace can go; one with repositories cannot, unless forced; nothing goes
    # without a yes.
    refused = owner.fails("workspace", "delete", ws, "--yes")
    assert f"repository {ws}/app" in refused or f"image {ws}/app" in refused
    assert "force" in refused
    assert "nothing was deleted" in owner.fails("workspace", "delete", ws, "--force")
    assert "error:" in developer.fails("workspace", "delete", ws, "--force", "--yes")
    spare = unique("spare")
    assert "public" in owner.ok("workspace", "create", spare, "--public-default")
    owner.ok("workspace", "set", spare, "--default-visibility", "private", "--description", "later")
    shown = owner.json("workspace", "show", spare)
    assert (shown["default_visibility"], shown["description"]) == ("private", "later")
    owner.ok("workspace", "delete", spare, stdin="y\n")
    assert "not found" in owner.fails("workspace", "show", spare)


def test_repository_permissions(admin: Cli, cli: CliFactory, token_registry: RunningRegistry) -> None:
    reader_name = new_user(admin, "granted")
    ws, team = unique("perm"), unique("team")
    admin.ok("workspace", "create", ws)
    admin.ok("team", "create", ws, team)
    with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
        oci.push(f"{ws}/tool", oci_manifest(), "v1")

    admin.ok("repo", "grant", f"{ws}/tool", reader_name, "--expires-days", "2")
    admin.ok("repo", "team-role", f"{ws}/tool", team, "reader")
    perms = admin.json("repo", "permissions", f"{ws}/tool")
    assert perms["teams"] == [[team, "reader"]]
    assert [(g["username"], g["action"]) for g in perms["users"]] == [(reader_name, "pull")]
    table = admin.ok("repo", "permissions", f"{ws}/tool")
    assert reader_name in table
    assert team in table

    reader = cli(reader_name)
    assert [r["name"] for r in reader.json("repo", "list", "--workspace", ws)] == [f"{ws}/tool"]
    with oci_as(token_registry, reader_name, PASSWORD) as oci:
        assert oci.get_manifest(f"{ws}/tool", "v1").status_code == 200
        assert "maintainer" in reader.fails("repo", "visibility", f"{ws}/tool", "public")
        admin.ok("repo", "revoke", f"{ws}/tool", reader_name)
        admin.ok("repo", "team-role", f"{ws}/tool", team, "none")
    with oci_as(token_registry, reader_name, PASSWORD) as oci:
        assert oci.get_manifest(f"{ws}/tool", "v1").status_code == 401
    assert admin.json("repo", "permissions", f"{ws}/tool") == {"teams": [], "users": []}


def test_access_request_flow(admin: Cli, cli: CliFactory, token_registry: RunningRegistry) -> None:
    maintainer_name, requester_name = new_user(admin, "maint"), new_user(admin, "asker")
    ws = unique("data")
    admin.ok("workspace", "create", ws)
    admin.ok("member", "add", ws, maintainer_name, "--role", "maintainer")
    repo = f"{ws}/reads"
    with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
        oci.push(repo, oci_manifest(), "v1")

    requester, maintainer = cli(requester_name), cli(maintainer_name)
    with oci_as(token_registry, requester_name, PASSWORD) as oci:
        assert oci.get_manifest(repo, "v1").status_code == 401
    asked = json.loads(requester.ok("access", "request", repo, "-m", "for the paper", "--json"))
    assert asked["status"] == "pending"
    assert [r["id"] for r in requester.json("access", "list", "--mine")] == [asked["id"]]

    pending = maintainer.json("access", "list", "--workspace", ws, "--status", "pending")
    assert [(r["id"], r["requester"], r["message"]) for r in pending] == [
        (asked["id"], requester_name, "for the paper")
    ]
    assert "for the paper" in maintainer.ok("access", "list", "--workspace", ws)
    assert any(n["kind"] == "access_request.created" for n in maintainer.json("notifications"))
    assert "error:" in requester.fails("access", "approve", str(asked["id"]))

    assert "Approved" in maintainer.ok(
        "access", "approve", str(asked["id"]), "--expires-days", "1", "--note", "ok"
    )
    notes = requester.json("notifications", "--unread")
    approved = [n for n in notes if n["kind"] == "access_request.approved"]
    assert approved
    assert approved[0]["payload"]["repository"] == repo
    shown = requester.ok("notifications", "--mark-read")
    assert f"approved: you may pull {repo}" in shown
    assert requester.json("notifications", "--unread") == []
    with oci_as(token_registry, requester_name, PASSWORD) as oci:
        assert oci.get_manifest(repo, "v1").status_code == 200

    # A second request: withdrawn by the requester; a third: rejected by the maintainer.
    again = json.loads(requester.ok("access", "request", repo, "--push", "--json"))
    assert "cancelled" in requester.ok("access", "cancel", str(again["id"]))
    third = json.loads(requester.ok("access", "request", repo, "--push", "--json"))
    assert "rejected" in maintainer.ok("access", "reject", str(third["id"]), "--note", "no pushes")
    statuses = {r["id"]: r["status"] for r in maintainer.json("access", "list", "--workspace", ws)}
    assert statuses == {asked["id"]: "approved", again["id"]: "cancelled", third["id"]: "rejected"}
    assert "rejected: your request" in requester.ok("notifications")
    actions = [e["action"] for e in admin.json("audit", "--workspace", ws)]
    assert {"access_request.create", "access_request.approve", "access_request.reject"} <= set(actions)
    assert "access_request.approve" in admin.ok("audit", "--limit", "50")


def test_keys_rotate_keeps_old_tokens_valid(
    admin: Cli, cli: CliFactory, token_registry: RunningRegistry
) -> None:
    ws = unique("keys")
    admin.ok("workspace", "create", ws)
    with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
        oci.push(f"{ws}/app", oci_manifest(), "v1")
    scope = f"repository:{ws}/app:pull"
    before = registry_token(token_registry, ADMIN, ADMIN_PASSWORD, scope).json()["token"]

    server_env = {k: v for k, v in token_registry.env.items() if k.startswith("DOCKYARD_")}
    printed = admin.ok("keys", "rotate", "--data-dir", str(token_registry.data_dir), env=server_env)
    new_kid = printed.strip().rsplit(" ", 1)[-1]
    assert new_kid != kid_of(before)

    after = registry_token(token_registry, ADMIN, ADMIN_PASSWORD, scope).json()["token"]
    assert kid_of(after) == new_kid
    for token in (before, after):
        response = httpx.get(
            f"{token_registry.url}/v2/{ws}/app/manifests/v1",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.oci.image.manifest.v1+json",
            },
            timeout=30,
        )
        assert response.status_code == 200
    # Logins keep working after the rotation.
    cli(ADMIN, ADMIN_PASSWORD)


def test_workspace_quota_show_set_and_clear(
    token_registry: RunningRegistry, cli: CliFactory, admin: Cli
) -> None:
    name = new_user(admin, "quota")
    me = cli(name)
    with oci_as(token_registry, name, PASSWORD) as oci:
        manifest = oci_manifest()
        assert oci.push(f"{name}/tool", manifest, "1").status_code == 201
    stored = sum(blob.size for blob in manifest.blobs)
    shown = me.ok("workspace", "quota", "show", name)
    assert f"[{stored} bytes]" in shown
    assert "quota:     unlimited (no quota)" in shown
    assert "administrators" in me.fails("workspace", "quota", "set", name, "1GiB")

    assert f"[{3 << 29} bytes] (set for this workspace)" in admin.ok(
        "workspace", "quota", "set", name, "1.5GiB"
    )
    assert "not a size" in admin.fails("workspace", "quota", "set", name, "lots")
    seen = me.json("workspace", "quota", "show", name)
    assert (seen["used_bytes"], seen["limit_bytes"], seen["own_limit_bytes"]) == (stored, 3 << 29, 3 << 29)
    assert admin.json("workspace", "quota", "set", name, "1000")["limit_bytes"] == 1000
    assert "quota:     unlimited (no quota)" in admin.ok("workspace", "quota", "clear", name)
