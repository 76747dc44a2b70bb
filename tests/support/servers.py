"""Start real servers for the tests: ``dockyard serve`` on SQLite or PostgreSQL, and the
reference registry (Debian's ``docker-registry``) so the black-box spec suite can be run
against it too (``DOCKYARD_TEST_TARGET=reference``)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dockyard.cluster.siblings import run_dir_for
from tests.support.s3 import s3_env

PG_ADMIN_DSN = os.environ.get("DOCKYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
# Every upstream, git server and external registry of the tests is on loopback: the test servers
# allow it, as an admin would allow a lab's own registry. Tests of the refusal override it.
LOOPBACK_ALLOWED = "127.0.0.0/8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningRegistry:
    """A registry listening on loopback, as the tests and the real clients see it."""

    kind: str  # "sqlite", "postgres" or "reference"
    host: str  # "127.0.0.1:PORT", what docker/podman/skopeo take
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    database_url: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def is_dockyard(self) -> bool:
        return self.kind != "reference"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"server at {url} did not answer in {timeout}s:\n{log_path.read_text(errors='replace')}"
    )


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test session; dropped afterwards."""
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("psql is missing: run scripts/setup.sh (PostgreSQL client) first")
    name = f"dockyard_test_{uuid.uuid4().hex[:12]}"
    subprocess.run([psql, PG_ADMIN_DSN + "/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        yield f"postgresql+asyncpg://{PG_ADMIN_DSN.split('://', 1)[1]}/{name}"
    finally:
        subprocess.run(
            [psql, PG_ADMIN_DSN + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            check=False,
        )


def start_dockyard(
    kind: str, base: Path, database_url: str = "", extra_env: dict[str, str] | None = None
) -> RunningRegistry:
    """Run ``python -m dockyard serve`` on a free loopback port (or ``DOCKYARD_PORT`` in
    ``extra_env``) and wait until it answers."""
    port = int((extra_env or {}).get("DOCKYARD_PORT") or free_port())
    data_dir = base / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = base / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update(
        {
            "DOCKYARD_DATA_DIR": str(data_dir),
            "DOCKYARD_PORT": str(port),
            "DOCKYARD_HOST": "127.0.0.1",
            "DOCKYARD_GC_INTERVAL_SECONDS": "0",
            "DOCKYARD_AUTH_MODE": "dev",
            "DOCKYARD_OUTBOUND_ALLOW": LOOPBACK_ALLOWED,
        }
    )
    if database_url:
        env["DOCKYARD_DATABASE_URL"] = database_url
    if os.environ.get("DOCKYARD_TEST_STORAGE") == "s3":
        env.update(s3_env())
    env.update(extra_env or {})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "serve"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    server = RunningRegistry(kind, f"127.0.0.1:{port}", data_dir, log_path, process, database_url, env)
    try:
        wait_healthy(f"{server.url}/healthz", process, log_path)
    except BaseException:
        server.stop()
        raise
    return server


def start_reference(base: Path) -> RunningRegistry:
    """Debian's docker-registry (CNCF Distribution 2.8) with deletes enabled."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is missing: run scripts/setup.sh first")
    port = free_port()
    data_dir = base / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {data_dir}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log_path = base / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    server = RunningRegistry("reference", f"127.0.0.1:{port}", data_dir, log_path, process)
    try:
        wait_healthy(f"{server.url}/v2/", process, log_path)
    except BaseException:
        server.stop()
        raise
    return server


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` now."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(pid):
                children.append(int(status.parent.name))
    return children


def worker_pids(server: RunningRegistry) -> list[int]:
    """The server's child processes (its workers, and uvicorn's helpers)."""
    return children_of(server.process.pid)


def server_workers(server: RunningRegistry) -> list[int]:
    """The worker processes of a ``dockyard serve`` with several workers (uvicorn spawns them)."""
    workers = []
    for child in children_of(server.process.pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
    return sorted(workers)


def serving_processes(server: RunningRegistry) -> list[int]:
    """The processes that take ``server``'s connections: its workers, or itself when it has none."""
    return server_workers(server) or [server.process.pid]


def worker_sockets(server: RunningRegistry, expected: int | None = None) -> list[Path]:
    """Each worker's own socket (the one its siblings reach it by), one per worker: a request
    sent there reaches that worker and no other. Waits (polling, at most a minute) until every
    worker has made its own: a worker makes it at the end of its start-up, which can come after
    the server, through another worker, has answered its first request."""
    deadline = time.monotonic() + 60
    while True:
        sockets = sorted(run_dir_for(server.data_dir).glob("worker-*.sock"))
        workers = server_workers(server)
        if len(sockets) == len(workers) > 1 and expected in (None, len(sockets)):
            return sockets
        assert time.monotonic() < deadline, (sockets, workers, expected)
        time.sleep(0.05)


def worker_holding(server: RunningRegistry, client: socket.socket) -> int:
    """The process of ``server`` that took the connection ``client`` (once a request on it was
    answered, it is accepted): the one holding the server's end of it."""
    port = int(server.host.rsplit(":", 1)[1])
    mine = int(client.getsockname()[1])
    ends = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()  # sl, local address, remote address, ..., inode (the 10th)
                local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
                if (local, remote) == (port, mine):
                    ends.add(f"socket:[{fields[9]}]")
    for pid in serving_processes(server):
        with contextlib.suppress(OSError):
            for descriptor in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(descriptor) in ends:
                        return pid
    raise AssertionError(f"no process of {server.url} holds the connection from port {mine}")


def ask_a_worker(server: RunningRegistry, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """(worker, status) of ``GET path`` on a connection of its own, which any worker may take."""
    host, port = server.host.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        assert connection.sock is not None
        return worker_holding(server, connection.sock), response.status
    finally:
        connection.close()


def request_lines(server: RunningRegistry) -> list[dict[str, Any]]:
    """The server's request lines (its JSON access log), once every process has written those of
    the requests it answered so far. A process writes its lines in order, in batches: a marker
    request that each one answered, once in the log, shows that all it answered before is too."""
    markers: dict[int, str] = {}
    deadline = time.monotonic() + 30
    while set(markers) != set(serving_processes(server)):
        assert time.monotonic() < deadline, f"not every process of {server.url} took a connection"
        path = f"/v2/log-marker-{uuid.uuid4().hex}/tags/list"
        markers.setdefault(ask_a_worker(server, path, {})[0], path)
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith('{"ts"')]
        if set(markers.values()) <= {line["path"] for line in lines}:
            return lines
        assert time.monotonic() < deadline, "the marker requests never reached the log"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_hard(server: RunningRegistry) -> None:
    """SIGKILL the server and its worker processes: a crash, with no shutdown code run."""
    children = children_of(server.process.pid)
    server.process.kill()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)
    server.process.wait()


@contextlib.contextmanager
def private_dockyard(
    kind: str, base: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[RunningRegistry, Callable[[], RunningRegistry]]]:
    """A Dockyard of its own (for tests that collect garbage or crash the server).

    Yields the server and a ``restart`` function that starts a new server on the same data
    folder and database (after the caller stopped or killed the first one).
    """
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(postgres_database()) if kind == "postgres" else ""
        servers = [start_dockyard(kind, base, database_url, extra_env)]

        def stop_all() -> None:
            for server in servers:
                server.stop()

        stack.callback(stop_all)

        def restart() -> RunningRegistry:
            servers.append(start_dockyard(kind, base, database_url, extra_env))
            return servers[-1]

        yield servers[0], restart


def dockyard_cli(
    server: RunningRegistry, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dockyard ARGS`` with the server's settings (data folder, database)."""
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
