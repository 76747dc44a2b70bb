"""One writer per upload session, across processes and replicas, released by a crash.

A lock that outlives a dead holder would leave the session unusable (the client's resume
after a server crash would be refused), so both kinds are freed by the system itself:

- :class:`FileUploadLocks`: ``flock`` on a file per session, for the workers of one
  machine (the SQLite deployment); the kernel drops it when the holder's process dies.
  ``forget`` removes the file while it is still locked, and a lock taken on a file that is no
  longer at its path is taken again on the new one, so removing never lets two holders in;
- :class:`PostgresUploadLocks`: a session advisory lock on a connection held for the
  request; PostgreSQL drops it when that connection closes, whatever closed it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import asyncpg


class UploadLocks(Protocol):
    def hold(self, upload_id: str) -> AbstractAsyncContextManager[bool]:
        """Try to take the session's lock without waiting; yields whether it was taken."""
        ...

    def forget(self, upload_id: str) -> None:
        """The session is gone: drop whatever its lock left behind."""
        ...


REOPENS = 3  # a file removed under us (forget) this many times in a row: as if held


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (a lock on a removed file guards nothing)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class FileUploadLocks:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[bool]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / upload_id
        fd = -1
        try:
            for _ in range(REOPENS):
                fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    break
                if _same_file(fd, path):
                    yield True
                    return
                os.close(fd)  # the holder we waited for removed it (forget): lock the new file
                fd = -1
            yield False
        finally:
            if fd >= 0:
                os.close(fd)  # releases the lock

    def forget(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / upload_id).unlink()


class PostgresUploadLocks:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[bool]:
        key = int.from_bytes(hashlib.sha256(upload_id.encode()).digest()[:8], "big", signed=True)
        conn = await asyncpg.connect(self.dsn)
        held = False
        try:
            held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            yield held
        finally:
            try:
                if held:
                    # Released before this returns: closing the connection alone releases it
                    # only when the server's backend has gone, a moment later, and a request that
                    # came right after this one's answer (another replica's) would find it taken.
                    with contextlib.suppress(Exception):  # a broken connection releases it as it goes
                        await conn.execute("SELECT pg_advisory_unlock($1)", key)
            finally:
                await conn.close()  # releases it in any case

    def forget(self, upload_id: str) -> None:
        return None
