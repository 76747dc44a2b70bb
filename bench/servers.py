"""Start and stop the two registries on loopback, each with its own fresh data folder."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

DOCKYARD = "dockyard"
REFERENCE = "reference"
# The first admin of a token-mode Dockyard (a throwaway server on loopback).
ADMIN_USERNAME = "bench-admin"
ADMIN_PASSWORD = "bench-admin-password"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A registry process (and its process group) listening on 127.0.0.1."""

    name: str  # DOCKYARD or REFERENCE: the slot it fills
    kind: str  # what actually runs there: "dockyard" or "docker-registry"
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    credentials: tuple[str, str] | None = None  # the admin's, when it runs in token mode

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for the whole process group if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Workers left behind by a crashed parent are still in its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _probe(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if _probe(server.port, path) == 200:
                return
        time.sleep(0.1)
    raise ServerError(f"{server.name} did not answer {path} within {timeout:.0f}s:\n{server.log_tail()}")


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # own process group: stop() can reach every worker
        )


def start_dockyard(
    base: Path,
    name: str = DOCKYARD,
    token_mode: bool = False,
    database_url: str = "",
    src: Path | None = None,
    outbound_allow: str = "",
    extra_env: dict[str, str] | None = None,
) -> Server:
    """``python -m dockyard serve`` with default settings but a fresh data dir and a free port.

    Dev mode (anonymous push from loopback, as the reference runs without auth), or with
    ``token_mode`` users and workspaces, which ``/api/v1`` needs: the first admin is
    ``ADMIN_USERNAME`` with ``ADMIN_PASSWORD`` (``Server.credentials``). The metadata database
    is SQLite in the data dir unless ``database_url`` names another (``DOCKYARD_DATABASE_URL``).
    ``src`` runs another source tree than this one's ``src/``; ``outbound_allow`` is
    ``DOCKYARD_OUTBOUND_ALLOW`` (a pull-through cache of a loopback upstream needs it);
    ``extra_env`` more ``DOCKYARD_*`` settings (the S3 rows' storage)."""
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    data_dir.mkdir()
    port = free_port()
    code = src or REPO_ROOT / "src"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update(
        DOCKYARD_DATA_DIR=str(data_dir),
        DOCKYARD_PORT=str(port),
        DOCKYARD_HOST="127.0.0.1",
        DOCKYARD_AUTH_MODE="token" if token_mode else "dev",
        # The working tree's code, whether or not the package is installed in the venv.
        PYTHONPATH=os.pathsep.join(p for p in (str(code), env.get("PYTHONPATH", "")) if p),
    )
    if database_url:
        env.update(DOCKYARD_DATABASE_URL=database_url)
    if outbound_allow:
        env.update(DOCKYARD_OUTBOUND_ALLOW=outbound_allow)
    env.update(extra_env or {})
    credentials = (ADMIN_USERNAME, ADMIN_PASSWORD) if token_mode else None
    if credentials is not None:
        env.update(DOCKYARD_ADMIN_USERNAME=credentials[0], DOCKYARD_ADMIN_PASSWORD=credentials[1])
    log_path = base / "server.log"
    process = _spawn([sys.executable, "-m", "dockyard", "serve"], env, log_path)
    server = Server(name, "dockyard", port, data_dir, log_path, process, credentials)
    try:
        _wait_ready(server, "/healthz")
    except BaseException:
        server.stop()
        raise
    return server


def reference_config(data_dir: Path, port: int, proxy_remote: str = "", storage: str = "") -> str:
    """``proxy_remote``: a pull-through cache of that registry (``proxy.remoteurl``);
    ``storage``: the lines of another storage driver than the filesystem (indented 2 spaces)."""
    proxy = f"proxy:\n  remoteurl: {proxy_remote}\n" if proxy_remote else ""
    driver = storage or f"  filesystem:\n    rootdirectory: {data_dir}\n"
    return (
        "version: 0.1\n"
        "log:\n"
        "  level: warn\n"
        "storage:\n"
        f"{driver}"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
        f"{proxy}"
    )


def start_reference(base: Path, name: str = REFERENCE, proxy_remote: str = "", storage: str = "") -> Server:
    """Debian's ``docker-registry`` (CNCF Distribution 2.8.2) with its own config file; with
    ``proxy_remote`` (``http://127.0.0.1:PORT``) a pull-through cache of that registry, with
    ``storage`` another storage driver (see ``reference_config``)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise ServerError(
            "docker-registry is missing: apt-get install -y --no-install-recommends docker-registry"
        )
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    data_dir.mkdir()
    port = free_port()
    config = base / "config.yml"
    config.write_text(reference_config(data_dir, port, proxy_remote, storage))
    log_path = base / "server.log"
    # No AWS_* either: its s3 driver has its settings from the config, and with AWS_CA_BUNDLE set
    # (a TLS setting, useless on plain-http loopback) the AWS SDK panics at start.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AWS_"))}
    process = _spawn([binary, "serve", str(config)], env, log_path)
    server = Server(name, "docker-registry", port, data_dir, log_path, process)
    try:
        _wait_ready(server, "/v2/")
    except BaseException:
        server.stop()
        raise
    return server


def registry_version() -> str:
    binary = shutil.which("docker-registry")
    if binary is None:
        return "missing"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stdout or out.stderr).strip()


PG_DEFAULT = os.environ.get("DOCKYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _psql(admin_url: str, statement: str) -> None:
    subprocess.run(["psql", "-X", f"{admin_url}/postgres", "-qc", statement], check=True, capture_output=True)


@contextlib.contextmanager
def metadata_database(kind: str, pg: str = PG_DEFAULT) -> Iterator[str]:
    """A server's database URL: "" for SQLite in its data dir, or a PostgreSQL database
    created on ``pg`` for the run and dropped after."""
    if kind == "sqlite":
        yield ""
        return
    name = f"dockyard_bench_{uuid.uuid4().hex[:12]}"
    _psql(pg, f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{pg.split('://', 1)[1]}/{name}"
    finally:
        _psql(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
