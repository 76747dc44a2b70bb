"""Sibling server processes on one host: each listens on a Unix socket of its own, where
the others pass on requests that belong to it (an archive upload whose import it holds;
see :mod:`dockyard.transfer.imports.live`).

The sockets live in a short folder under the temporary directory, one per data folder (a
Unix socket's path may not exceed 107 bytes; data folders can be deep). It must be a private
folder of this user: another user could create it first in /tmp, so every use checks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger("dockyard")


def run_dir_for(data_dir: Path) -> Path:
    """Where this host's server processes for ``data_dir`` keep their sockets: a short path
    (a Unix socket's path may not exceed 107 bytes; data folders can be deep)."""
    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"dockyard-{key}"


def private_folder(folder: Path) -> bool:
    """Whether ``folder`` is a real folder of this user that nobody else may enter."""
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def sibling_socket(run_dir: Path, pid: int) -> Path | None:
    """The socket of server process ``pid`` on this host, if it is there and trustworthy:
    a socket of this user in a private folder (another user could plant one in /tmp)."""
    if not private_folder(run_dir):
        return None
    path = worker_socket(run_dir, pid)
    try:
        info = path.lstat()
    except OSError:
        return None
    return path if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid() else None


def worker_socket(run_dir: Path, pid: int) -> Path:
    """Where a server process on this host takes requests forwarded by its siblings."""
    return run_dir / f"worker-{pid}.sock"


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the process's main server handles signals


class SiblingSocket:
    """This process's Unix socket, where sibling server processes on the host pass on
    requests that belong here (an archive upload whose import this process holds)."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.path = path
        self._app = app
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private_folder(folder):
            log.warning("not serving sibling requests: %s is not a private folder of this user", folder)
            return
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(64)
        config = uvicorn.Config(self._app, lifespan="off", access_log=False, log_config=None, loop="none")
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]))

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await self._task
        self.path.unlink(missing_ok=True)
