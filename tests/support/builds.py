"""Test support for builds (issue #6).

A module's Dockyard runs as ``dockyard serve`` in token mode with its job worker turned off
(``DOCKYARD_WORKER_ENABLED=false``): the registry, token endpoint, catalog and its push
listener are the real server's. Each test builds the same services in-process from the
same data folder and database (``dockyard.app.services.build_services``, as ``dockyard worker``
does) and runs the build jobs with ``Worker.run_once()``, so it decides when a build runs
and can cancel it midway. Builds use the real buildah, push to the server over loopback
and are pulled and run with podman.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.app.services import Services, build_services
from dockyard.auth.policy import Subject
from dockyard.builds.definitions import BuildDefinitions
from dockyard.builds.service import BuildService
from dockyard.builds.views import RunView
from dockyard.jobs.worker import Worker
from dockyard.settings import Settings
from tests.support.catalog import new_user
from tests.support.clients import Podman, Skopeo, containers_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard, unique
from tests.support.images import TestImages
from tests.support.servers import LOOPBACK_ALLOWED, RunningRegistry, postgres_database

BUILD_DEADLINE = 300.0  # seconds a test waits for a build (or a log line) before failing
SERVER_ENV = {"DOCKYARD_WORKER_ENABLED": "false", "DOCKYARD_GC_INTERVAL_SECONDS": "0"}


def database_kinds() -> list[str]:
    wanted = os.environ.get("DOCKYARD_TEST_DB", "sqlite,postgres")
    return [t.strip() for t in wanted.split(",") if t.strip()]


@contextlib.contextmanager
def build_server(kind: str, base: Path) -> Iterator[RunningRegistry]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if kind == "postgres" else ""
        server = start_token_dockyard(kind, base, url, SERVER_ENV)
        stack.callback(server.stop)
        yield server


def worker_settings(server: RunningRegistry, build_dir: Path, **overrides: Any) -> Settings:
    """The server's settings, for services built in the test process."""
    host, port = server.host.rsplit(":", 1)
    values: dict[str, Any] = {
        "data_dir": server.data_dir,
        "database_url": server.database_url,
        "auth_mode": "token",
        "admin_username": ADMIN,
        "admin_password": ADMIN_PASSWORD,
        "host": host,
        "port": int(port),
        "gc_interval_seconds": 0,
        "build_dir": build_dir,
        "build_git_protocols": ["file"],
        "outbound_allow": [LOOPBACK_ALLOWED],
        **overrides,
    }
    return Settings(**values)


@dataclass
class Builds:
    """In-process build services on the server's data, and a worker for their jobs."""

    server: RunningRegistry
    services: Services
    worker: Worker

    @property
    def service(self) -> BuildService:
        assert self.services.builds is not None
        return self.services.builds

    @property
    def definitions(self) -> BuildDefinitions:
        return self.service.definitions

    async def subject(self, username: str) -> Subject:
        user = await self.services.identity.accounts.get_user(username)
        return Subject("user", user.id, user.username, is_admin=user.is_admin)

    async def run_next(self) -> None:
        """Run the next queued job to its end (there must be one)."""
        assert await self.worker.run_once(), "no build job was queued"

    async def build(self, actor: Subject, name: str, version: str | None = None) -> RunView:
        """Start a build, run its job, and return the run as it ended."""
        run = await self.service.start(actor, name, version)
        assert run.status == "queued", run
        await self.run_next()
        return await self.service.run(actor, run.id)

    async def log(self, actor: Subject, run_id: int) -> str:
        return (await self.service.log(actor, run_id)).decode()

    async def wait_log(self, actor: Subject, run_id: int, text: str) -> str:
        """Poll the stored log until it contains ``text`` (the build runs in a task meanwhile)."""
        deadline = time.monotonic() + BUILD_DEADLINE
        while True:
            found = await self.log(actor, run_id)
            if text in found:
                return found
            assert time.monotonic() < deadline, f"{text!r} not in the log after {BUILD_DEADLINE}s:\n{found}"
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def in_process(server: RunningRegistry, build_dir: Path, **overrides: Any) -> AsyncIterator[Builds]:
    services = build_services(worker_settings(server, build_dir, **overrides))
    try:
        yield Builds(server, services, Worker(services.jobs, services.job_handlers, lease_seconds=30.0))
    finally:
        await services.close()


def push_base_image(images: TestImages, skopeo: Skopeo, host: str, repository: str, username: str) -> str:
    """Push the busybox test image as ``repository:v1``; its reference for FROM lines."""
    reference = f"{host}/{repository}:v1"
    skopeo.copy(images.image_ref, f"docker://{reference}", extra=["--dest-creds", f"{username}:{PASSWORD}"])
    return reference


@dataclass(frozen=True)
class Team:
    workspace: str  # an organisation
    owner: str
    developer: str
    reader: str
    outsider: str
    base: str  # the busybox base image, private to the workspace


def new_team(server: RunningRegistry, images: TestImages, skopeo: Skopeo) -> Team:
    """A new organisation with an owner, a developer and a reader, a user outside it, and
    the busybox base image pushed to it by the owner. All passwords are ``PASSWORD``."""
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        owner = new_user(admin, "owner")
        developer, reader, outsider = (new_user(admin, label) for label in ("dev", "reader", "outsider"))
    workspace = unique("lab")
    with Api.connect(server, owner, PASSWORD) as api:
        api.create_workspace(workspace)
        api.set_member(workspace, developer, "developer")
        api.set_member(workspace, reader, "reader")
    base = push_base_image(images, skopeo, server.host, f"{workspace}/busybox", owner)
    return Team(workspace, owner, developer, reader, outsider, base)


def pull_and_run(podman: Podman, server: RunningRegistry, username: str, reference: str) -> str:
    """Pull ``reference`` with podman, signed in as ``username``, and run it; its output."""
    containers_login(podman, server.host, username, PASSWORD)
    podman.pull(reference)
    return podman.run(reference)


def tar_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar with ``name -> (content, mode)`` entries (folders added as needed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[str] = set()
        for name, (content, mode) in sorted(files.items()):
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class GitRepo:
    """A git repository in a folder, committed to by the test (served as ``file://``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch", "main")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path.parent),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.org",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.org",
        }
        result = subprocess.run(
            ["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        """Write ``files`` (relative path -> text), commit them, return the commit's sha."""
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)
        return self.git("rev-parse", "HEAD")
