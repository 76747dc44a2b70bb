"""Git clones go only where the outbound policy allows, to the addresses it checked.

Real git against loopback servers of the test: a folder served over HTTP (git's "dumb"
protocol) and ``git daemon``. Names like ``git.test`` exist only in the policy's lookup, so a
clone that works proves git connected to the checked address and did not look the name up.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from dockyard.builds.builder import BuildFailed
from dockyard.builds.gitsource import GitDestination, checkout, git_destination
from dockyard.builds.process import Deadline
from dockyard.builds.spec import GitSource
from dockyard.outbound import OutboundPolicy, OutboundRefused
from tests.support.builds import GitRepo
from tests.support.outbound import canary, http_server
from tests.support.servers import free_port

NOT_ALLOWED = "which an administrator has not allowed (DOCKYARD_OUTBOUND_ALLOW)"
PROTOCOLS = ["https", "http", "git", "ssh"]


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def write(self, line: str) -> None:
        self.lines.append(line)


async def never_cancelled() -> None:
    pass


def names(table: dict[str, str]) -> Callable[[str, int], Awaitable[list[str]]]:
    async def lookup(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [table[host]]

    return lookup


async def clone(url: str, dest: Path, policy: OutboundPolicy, log: Lines | None = None) -> str:
    found = await checkout(
        GitSource(url, "main"),
        dest,
        protocols=PROTOCOLS,
        outbound=policy,
        log=log or Lines(),
        deadline=Deadline(60),
        cancelled=never_cancelled,
    )
    return found.commit


@pytest.fixture
def repo(tmp_path: Path) -> tuple[GitRepo, str]:
    """A bare repository, ready to be served as files ("dumb" HTTP) or by git daemon."""
    work = GitRepo(tmp_path / "work")
    commit = work.commit({"Dockerfile": "FROM scratch\n"}, "first")
    bare = tmp_path / "served" / "repo.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(work.path), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    return work, commit


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert process.poll() is None, "git daemon exited"
            assert time.monotonic() < deadline, "git daemon did not listen"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.parametrize(
    ("url", "destination"),
    [
        ("https://git.example.org/group/project.git", GitDestination("https", "git.example.org", 443)),
        ("http://127.0.0.1:8080/x.git", GitDestination("http", "127.0.0.1", 8080)),
        ("https://[::1]:8443/x.git", GitDestination("https", "::1", 8443)),
        ("git://Git.Example.org/x.git", GitDestination("git", "git.example.org", 9418)),
        ("ssh://git@example.org:2222/x.git", GitDestination("ssh", "example.org", 2222)),
        ("ssh://example.org/x.git", GitDestination("ssh", "example.org", 22)),
        ("git@example.org:group/x.git", GitDestination("ssh", "example.org", 22)),
        ("git@[::1]:x.git", GitDestination("ssh", "::1", 22)),
        ("file:///srv/git/x.git", None),
    ],
)
def test_the_destination_of_a_git_url(url: str, destination: GitDestination | None) -> None:
    assert git_destination(url) == destination


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org:port/x.git",
        "https://example.org./x.git",
        "ext::sh -c x",
        "http::git@example.org:x.git",
        "https:///x.git",
    ],
)
def test_a_git_url_without_a_checkable_host_is_refused(url: str) -> None:
    with pytest.raises(OutboundRefused, match="names no host that can be checked"):
        git_destination(url)


@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("http://127.0.0.1:{port}/repo.git", "destination 127.0.0.1 is a loopback address"),
        ("https://localhost:{port}/repo.git", "destination localhost resolves to a loopback address"),
        ("git://[::1]:{port}/repo.git", "destination ::1 is a loopback address"),
        ("ssh://git@127.0.0.1:{port}/repo.git", "destination 127.0.0.1 is a loopback address"),
        ("git@localhost:repo.git", "destination localhost resolves to a loopback address"),
    ],
)
async def test_a_clone_from_a_loopback_url_is_refused_before_git_runs(
    tmp_path: Path, template: str, shown: str
) -> None:
    with canary() as target:
        url = template.format(port=target.port)
        log = Lines()
        with pytest.raises(BuildFailed) as failed:
            await clone(url, tmp_path / "checkout", OutboundPolicy(), log)
        assert target.accepted == 0
    assert str(failed.value) == f"git clone of {url} refused: {shown}, {NOT_ALLOWED}"
    assert not (tmp_path / "checkout").exists()
    assert log.lines == []  # git never started


async def test_an_allowed_clone_over_http_connects_to_the_checked_address(
    tmp_path: Path, repo: tuple[GitRepo, str]
) -> None:
    _, commit = repo
    with http_server(tmp_path / "served") as host:
        port = int(host.rsplit(":", 1)[1])
        policy = OutboundPolicy([f"git.test:{port}"], lookup=names({"git.test": "127.0.0.1"}))
        cloned = await clone(f"http://git.test:{port}/repo.git", tmp_path / "checkout", policy)
    assert cloned == commit


async def test_an_allowed_clone_over_git_protocol_connects_to_the_checked_address(
    tmp_path: Path, repo: tuple[GitRepo, str]
) -> None:
    _, commit = repo
    with git_daemon(tmp_path / "served") as port:
        policy = OutboundPolicy(["git.test"], lookup=names({"git.test": "127.0.0.1"}))
        cloned = await clone(f"git://git.test:{port}/repo.git", tmp_path / "checkout", policy)
    assert cloned == commit


async def test_git_follows_no_redirect_to_where_the_policy_did_not_look(tmp_path: Path) -> None:
    with canary() as target, http_server(redirect_to=f"http://{target.host}") as front:
        with pytest.raises(BuildFailed, match=r"git clone of .* failed \(exit status 128\)"):
            await clone(f"http://{front}/repo.git", tmp_path / "checkout", OutboundPolicy([front]))
        assert target.accepted == 0


async def test_ssh_is_sent_to_the_checked_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``ssh`` first on PATH records how git runs it (no ssh server needed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "ssh-args"
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit 1\n')
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    policy = OutboundPolicy(["git.test"], lookup=names({"git.test": "127.0.0.1"}))

    with pytest.raises(BuildFailed, match="failed"):
        await clone("git@git.test:group/repo.git", tmp_path / "checkout", policy)

    args = record.read_text().splitlines()
    assert "HostName=127.0.0.1" in args
    assert args[args.index("HostName=127.0.0.1") - 1] == "-o"
