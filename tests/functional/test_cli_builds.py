"""``dockyard build ...`` against ``dockyard serve`` as deployed by default: the server's own
worker runs the builds (buildah), the CLI talks to /api/v1 only, and logs are followed
live over chunked HTTP (and server-sent events).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builds import BUILD_DEADLINE, database_kinds, push_base_image
from tests.support.clients import Podman, Skopeo, containers_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard, unique
from tests.support.images import TestImages
from tests.support.servers import RunningRegistry, postgres_database
from tests.support.upstreams import closed_port

pytestmark = pytest.mark.clients


@dataclass
class Cli:
    """``python -m dockyard`` with one config file (one logged-in person)."""

    server: RunningRegistry
    config: Path

    def argv(self, *args: str) -> tuple[list[str], dict[str, str]]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env = {**base, "DOCKYARD_CLI_CONFIG": str(self.config), "COLUMNS": "200"}
        return [sys.executable, "-m", "dockyard", *args], env

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        argv, env = self.argv(*args)
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=BUILD_DEADLINE, check=False, env=env
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, (
            f"dockyard {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    @classmethod
    def login(cls, server: RunningRegistry, folder: Path, username: str, password: str) -> Cli:
        made = cls(server, folder / "cli.toml")
        made.ok("login", server.url, "-u", username, "--password-stdin", stdin=password + "\n")
        return made


@dataclass(frozen=True)
class People:
    workspace: str
    owner: Cli
    developer: Cli
    owner_name: str
    base: str


@pytest.fixture(scope="module", params=database_kinds())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    kind: str = request.param
    base = tmp_path_factory.mktemp(f"cli-builds-{kind}")
    if kind == "postgres":
        with postgres_database() as url:
            running = start_token_dockyard(kind, base, url)
            try:
                yield running
            finally:
                running.stop()
    else:
        running = start_token_dockyard(kind, base)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def people(
    server: RunningRegistry, test_images: TestImages, tmp_path_factory: pytest.TempPathFactory
) -> People:
    owner, developer, workspace = unique("owner"), unique("dev"), unique("lab")
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(owner)
        admin.create_user(developer)
    with Api.connect(server, owner, PASSWORD) as api:
        api.create_workspace(workspace)
        api.set_member(workspace, developer, "developer")
    base = push_base_image(
        test_images, Skopeo(tmp_path_factory.mktemp("skopeo")), server.host, f"{workspace}/busybox", owner
    )
    return People(
        workspace,
        Cli.login(server, tmp_path_factory.mktemp("owner"), owner, PASSWORD),
        Cli.login(server, tmp_path_factory.mktemp("developer"), developer, PASSWORD),
        owner,
        base,
    )


def test_create_start_follow_and_history_with_the_cli(
    server: RunningRegistry, people: People, tmp_path: Path, podman: Podman
) -> None:
    folder = tmp_path / "context"
    (folder / "etc").mkdir(parents=True)
    (folder / "etc" / "motd").write_text("built by the server's own worker\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        f"FROM {people.base}\nARG WHO\nCOPY etc/motd /etc/motd\n"
        'RUN echo "for $WHO" >> /etc/motd\nCMD ["/bin/cat", "/etc/motd"]\n'
    )
    name = f"{people.workspace}/motd"
    created = people.developer.json(
        "build", "create", "motd", "-w", people.workspace, "-f", str(dockerfile), "--files", str(folder),
        "--arg", "WHO=everyone",
    )  # fmt: skip
    assert (created["name"], created["status"], created["created_by"]) == (
        name,
        "not_built",
        created["updated_by"],
    )
    assert created["context_size"] > 0

    refused = people.developer.run("build", "start", name)
    assert refused.returncode == 1
    assert f"only owners of workspace {people.workspace!r}" in refused.stderr
    assert people.owner_name in refused.stderr

    started = people.owner.ok("build", "start", name, "--version", "1.0", "--follow")
    assert "STEP 4/5: RUN" in started.stdout
    assert "[dockyard] build succeeded: sha256:" in started.stdout
    assert "succeeded" in started.stderr
    assert people.owner.json("build", "show", name)["status"] == "built"

    runs = people.owner.json("build", "history", name)
    assert [(r["status"], r["version"], r["started_by"]) for r in runs] == [
        ("succeeded", "1.0", people.owner_name)
    ]
    assert runs[0]["duration"] is not None
    table = people.owner.ok("build", "history", name).stdout
    assert f"#{runs[0]['id']}" in table
    assert runs[0]["digest"] in table
    log = people.owner.ok("build", "logs", str(runs[0]["id"])).stdout
    assert log == started.stdout  # re-read later, the same log

    people.developer.ok("build", "edit", name, "--description", "a message of the day")
    assert people.owner.json("build", "show", name)["status"] == "built"
    dockerfile.write_text(dockerfile.read_text() + "LABEL changed=yes\n")
    assert people.developer.json("build", "edit", name, "-f", str(dockerfile))["status"] == "modified"
    kinds = [(e["kind"], e["actor"]) for e in people.owner.json("build", "changes", name)]
    assert kinds[0] == ("modified", created["created_by"])
    assert ("built", people.owner_name) in kinds

    containers_login(podman, server.host, people.owner_name, PASSWORD)
    podman.pull(f"{server.host}/{name}:1.0")
    assert podman.run(f"{server.host}/{name}:1.0") == "built by the server's own worker\nfor everyone\n"


def test_a_followed_build_streams_live_and_ends_when_cancelled(people: People, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {people.base}\nRUN echo sleeping now && /bin/busybox sleep 600\n")
    name = people.owner.json("build", "create", "sleeper", "-w", people.workspace, "-f", str(dockerfile))[
        "name"
    ]
    run = people.owner.json("build", "start", name)
    assert run["status"] in ("queued", "running"), run  # the server's worker may have taken it already

    argv, env = people.owner.argv("build", "logs", str(run["id"]), "--follow")
    follower = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        seen = ""
        deadline = time.monotonic() + BUILD_DEADLINE
        while "sleeping now" not in seen:  # printed while the build still runs
            line = follower.stdout.readline()
            assert line, f"the log ended early:\n{seen}"
            seen += line
            assert time.monotonic() < deadline, seen
        assert people.owner.ok("build", "cancel", str(run["id"])).stdout.startswith(f"build #{run['id']}:")
        rest, errors = follower.communicate(timeout=BUILD_DEADLINE)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 1
    assert f"[dockyard] cancelled by {people.owner_name}" in seen + rest
    assert f"build #{run['id']} cancelled" in errors
    assert people.owner.json("build", "history", name)[0]["status"] == "cancelled"


def test_server_sent_events_carry_the_log_and_the_end(
    server: RunningRegistry, people: People, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {people.base}\nRUN echo event stream\n")
    name = people.owner.json("build", "create", "events", "-w", people.workspace, "-f", str(dockerfile))[
        "name"
    ]
    run = people.owner.json("build", "start", name)
    events: list[tuple[str, str]] = []
    with (
        httpx.Client(
            base_url=f"{server.url}/api/v1", auth=(people.owner_name, PASSWORD), timeout=BUILD_DEADLINE
        ) as http,
        http.stream(
            "GET",
            f"/build-runs/{run['id']}/log",
            params={"follow": "true"},
            headers={"Accept": "text/event-stream"},
        ) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, line[6:]))
    assert ("log", "event stream") in events
    assert events[-1][0] == "end"
    assert json.loads(events[-1][1])["status"] == "succeeded"


def test_put_list_and_remove_context_files_one_by_one_with_the_cli(
    server: RunningRegistry, people: People, tmp_path: Path, podman: Podman
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        f'FROM {people.base}\nCOPY run.sh /run.sh\nCOPY notes/today.txt /today.txt\nCMD ["/run.sh"]\n'
    )
    script, note = tmp_path / "run.sh", tmp_path / "today.txt"
    script.write_text('#!/bin/sh\necho "today: $(cat /today.txt)"\n')
    note.write_text("sunny\n")
    created = people.developer.json(
        "build", "create", "one-by-one", "-w", people.workspace, "-f", str(dockerfile)
    )
    name = created["name"]
    assert people.developer.ok("build", "files", name).stdout.strip() == "no files"

    added = people.developer.json("build", "put-file", name, str(script), "--executable")
    assert added["context_size"] > 0
    said = people.developer.ok("build", "put-file", name, str(note), "--as", "notes/today.txt")
    assert "notes/today.txt saved (6 bytes, 0644)" in said.stderr + said.stdout
    listed = people.developer.json("build", "files", name)
    assert [(f["path"], f["mode"], f["size"]) for f in listed] == [
        ("run.sh", "0755", script.stat().st_size),
        ("notes/today.txt", "0644", 6),
    ]
    table = people.developer.ok("build", "files", name).stdout
    assert "notes/today.txt" in table
    assert "0755" in table

    people.owner.ok("build", "start", name, "--follow")
    containers_login(podman, server.host, people.owner_name, PASSWORD)
    podman.pull(f"{server.host}/{name}:latest")
    assert podman.run(f"{server.host}/{name}:latest") == "today: sunny\n"

    refused = people.developer.run("build", "put-file", name, str(note), "--as", "../escape.txt")
    assert refused.returncode == 1
    assert "without '..'" in refused.stderr

    removed = people.developer.json("build", "rm-file", name, "notes/today.txt")
    assert removed["status"] == "modified"
    assert [f["path"] for f in people.developer.json("build", "files", name)] == ["run.sh"]
    changes = people.owner.ok("build", "changes", name).stdout
    assert "removed notes/today.txt" in changes
    missing = people.developer.run("build", "rm-file", name, "notes/today.txt")
    assert missing.returncode == 1
    assert "notes/today.txt" in missing.stderr


def test_the_network_of_run_steps_is_a_setting_of_the_definition(people: People, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {people.base}\nRUN echo fetching\n")
    name = f"{people.workspace}/fetcher"
    created = people.developer.json(
        "build", "create", "fetcher", "-w", people.workspace, "-f", str(dockerfile), "--network", "egress"
    )
    assert created["network"] == "egress"
    assert [line.split() for line in people.developer.ok("build", "show", name).stdout.splitlines()].count(
        ["network:", "egress"]
    ) == 1

    refused = people.developer.run("build", "edit", name, "--network", "host")
    assert refused.returncode == 1, refused
    assert "network" in refused.stderr
    assert "'none'" in refused.stderr, refused.stderr
    assert "'egress'" in refused.stderr, refused.stderr
    assert people.developer.json("build", "show", name)["network"] == "egress"

    started = people.owner.ok("build", "start", name, "--follow")
    assert "RUN steps reach other hosts but not this server's loopback (network: egress)" in started.stdout
    assert people.owner.json("build", "show", name)["status"] == "built"
    runs = people.owner.json("build", "history", name)
    assert runs[0]["source"]["network"] == "egress"

    edited = people.developer.json("build", "edit", name, "--network", "none")
    assert (edited["network"], edited["status"]) == ("none", "modified")
    assert "changed network" in people.owner.ok("build", "changes", name).stdout


def test_push_targets_are_set_and_their_results_shown_with_the_cli(people: People, tmp_path: Path) -> None:
    stopped = f"127.0.0.1:{closed_port()}"  # a registry that is down: its push fails, the build does not
    people.owner.ok("registry", "add", people.workspace, "--host", stopped)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {people.base}\nLABEL mirrored=yes\n")
    name = f"{people.workspace}/mirrored"
    people.developer.ok("build", "create", "mirrored", "-w", people.workspace, "-f", str(dockerfile))
    edited = people.developer.json("build", "edit", name, "--push-to", f"{stopped}/mirror/tool:v1")
    assert edited["push_targets"] == [{"profile": stopped, "repository": "mirror/tool", "tag": "v1"}]
    assert f"{stopped}/mirror/tool:v1" in people.developer.ok("build", "show", name).stdout

    started = people.owner.ok("build", "start", name, "--follow")
    assert "[dockyard] push target failed (unreachable)" in started.stdout
    assert f"push to {stopped}/mirror/tool:v1 FAILED (unreachable)" in started.stderr
    run = people.owner.json("build", "history", name)[0]
    assert run["status"] == "succeeded"
    assert [(r["ok"], r["reason"]) for r in run["push_results"]] == [(False, "unreachable")]
    assert "0/1 ok" in people.owner.ok("build", "history", name).stdout
    table = people.owner.ok("build", "pushes", str(run["id"])).stdout
    assert "FAILED: unreachable" in table
    assert f"{stopped}/mirror/tool:v1" in table
