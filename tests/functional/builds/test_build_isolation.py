"""What a build can see and reach of the server (hardening, item 16): RUN steps see none of
its processes or devices and reach none of its loopback services, whatever the network
setting; an ``ssh://`` git context uses nothing of the server account's SSH set-up.

Real builds with the real buildah, runc and slirp4netns, and real git and OpenSSH.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shlex
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dockyard.builds.definitions import DefinitionInput
from dockyard.builds.spec import GitSource
from tests.support.builds import Builds, Team, in_process
from tests.support.servers import PG_ADMIN_DSN, RunningRegistry

pytestmark = pytest.mark.clients

# What runc gives a container for /dev; the server's disks, consoles, kvm... are not in it.
MINIMAL_DEV = {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm"}
MINIMAL_DEV |= {"stderr", "stdin", "stdout", "tty", "urandom", "zero"}


class Sentinel:
    """A TCP service on the server's loopback that counts who connects to it."""

    def __init__(self) -> None:
        self.connections = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        async with server:
            yield server.sockets[0].getsockname()[1]


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=3):
        return True
    return False


def _loopback_services(server: RunningRegistry) -> list[int]:
    """Ports of services on the server's loopback: its API, and PostgreSQL (trust
    authentication) where it listens on loopback here."""
    api = int(server.host.rsplit(":", 1)[1])
    assert _answers(api)  # the host reaches it: a closed port in the build means something
    pg = urlsplit(PG_ADMIN_DSN)
    return [api] + ([pg.port or 5432] if pg.hostname == "127.0.0.1" and _answers(pg.port or 5432) else [])


def _probe(base: str, ports: list[int]) -> str:
    """A Dockerfile whose RUN step reports what it sees (its output goes to the build log)."""
    run = (
        "for f in /proc/[0-9]*/cmdline; do echo \"process $f: $(busybox tr '\\0' ' ' < $f)\"; done; "
        "echo \"devices: $(ls /dev | busybox tr '\\n' ' ')\"; "
        'if busybox mknod /tmp/disk b 8 0; then echo "mknod: made"; else echo "mknod: refused"; fi; '
        f"for port in {' '.join(map(str, ports))}; do "
        'if busybox nc -w 3 127.0.0.1 $port </dev/null; then echo "port $port: open"; '
        'else echo "port $port: closed"; fi; done; '
        'echo "routes:"; busybox awk \'NR > 1 {print "route " $1 " " $2}\' /proc/net/route'
    )
    return f"FROM {base}\nRUN {run}\n"


@pytest.mark.parametrize("network", ["none", "egress"])
async def test_run_steps_see_no_server_process_or_device_and_reach_no_loopback_service(
    server: RunningRegistry, team: Team, builds: Builds, network: str
) -> None:
    owner = await builds.subject(team.owner)
    sentinel = Sentinel()
    async with sentinel.serving() as sentinel_port:
        ports = [*_loopback_services(server), sentinel_port]
        definition = await builds.definitions.create(
            owner,
            team.workspace,
            f"probe-{network}",
            DefinitionInput(dockerfile=_probe(team.base, ports), network=network),
        )
        assert definition.recipe.network == network
        run = await builds.build(owner, definition.name)
        log = await builds.log(owner, run.id)
    assert run.status == "succeeded", f"{run.reason}\n{log}"
    lines = log.splitlines()

    processes = [line for line in lines if line.startswith("process /proc/")]
    assert processes, log
    seen = {int(line.split("/")[2]) for line in processes}
    assert not seen & {os.getpid(), server.process.pid}, processes
    assert not [line for line in processes if "dockyard serve" in line or "pytest" in line], processes
    assert len(processes) < 10, processes  # the step's own shell and what it runs, no more

    devices = next(line for line in lines if line.startswith("devices: ")).split()[1:]
    assert set(devices) <= MINIMAL_DEV, devices
    assert "mknod: refused" in lines
    assert "mknod: made" not in lines

    assert [line for line in lines if line.startswith("port ")] == [f"port {p}: closed" for p in ports]
    assert sentinel.connections == 0

    default_route = "route tap0 00000000"
    if network == "egress":
        assert default_route in lines, log  # a way out, through slirp4netns
        assert "RUN steps reach other hosts but not this server's loopback (network: egress)" in log
    else:
        assert [line for line in lines if line.startswith("route ")] == [], log
        assert "RUN steps have no network (network: none;" in log


def _account_home() -> Path:
    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def _ssh_wrapper(folder: Path, fake_home: Path, record: Path) -> Path:
    """An ``ssh`` for PATH that runs the real OpenSSH with the account's home (which ssh
    takes from the password database, not ``$HOME``) replaced by ``fake_home``, in a mount
    namespace of its own; ``ssh -G`` first records the configuration ssh resolves there."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    script = (
        'mount --bind "$1" "$2" || exit 97; shift 2; /usr/bin/ssh -G "$@" > "$0" 2>&1; exec /usr/bin/ssh "$@"'
    )
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec unshare --mount -- /bin/sh -c {shlex.quote(script)} "
        f"{shlex.quote(str(record))} {shlex.quote(str(fake_home))} {shlex.quote(str(_account_home()))} "
        '"$@"\n'
    )
    wrapper.chmod(0o755)
    return bin_dir


async def test_an_ssh_git_context_uses_nothing_of_the_server_accounts_ssh_setup(
    server: RunningRegistry, team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "config-was-read"
    fake_home = tmp_path / "account-home"
    (fake_home / ".ssh").mkdir(parents=True, mode=0o700)
    (fake_home / ".ssh" / "config").write_text(
        f"Host *\n  User from-the-accounts-config\n  ProxyCommand /bin/sh -c 'echo read > {marker}; exit 1'\n"
    )
    record = tmp_path / "ssh-G.txt"
    monkeypatch.setenv("PATH", f"{_ssh_wrapper(tmp_path, fake_home, record)}:{os.environ['PATH']}")

    sentinel = Sentinel()  # where the git "server" is: ssh must come here itself, not by proxy
    async with in_process(server, tmp_path / "builds", build_git_protocols=["file", "ssh"]) as builds:
        owner = await builds.subject(team.owner)
        async with sentinel.serving() as port:
            definition = await builds.definitions.create(
                owner,
                team.workspace,
                "over-ssh",
                DefinitionInput(
                    context="git", git=GitSource(f"ssh://git@127.0.0.1:{port}/srv/tool.git", "main")
                ),
            )
            run = await builds.build(owner, definition.name)
            log = await builds.log(owner, run.id)

    assert run.status == "failed", log
    assert run.reason is not None
    assert "git clone of ssh://" in run.reason
    assert record.exists(), f"the build did not run ssh\n{log}"
    resolved = record.read_text()
    options: dict[str, list[str]] = {}
    for line in resolved.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value)
    assert options["identityfile"] == ["none"], resolved  # no ~/.ssh/id_* of the account
    assert options["identityagent"] == ["none"], resolved
    assert options["user"] == ["git"], resolved  # the URL's, not the account's config
    assert "proxycommand" not in options, resolved
    known_hosts = options["userknownhostsfile"][0]
    assert "~" not in known_hosts, resolved
    assert not known_hosts.startswith(str(_account_home())), resolved
    assert str(tmp_path / "builds") in known_hosts, resolved  # the build's own, removed with it

    assert not marker.exists(), "ssh read the account's ~/.ssh/config"
    assert sentinel.connections >= 1, log  # ssh connected to the URL's host itself
    assert sorted(p.name for p in (fake_home / ".ssh").iterdir()) == ["config"]  # nothing written
    assert re.search(r"kex_exchange_identification|Connection closed|Connection reset", log), log
