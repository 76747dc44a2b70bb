"""Full volumes: the one error every layer raises when a write finds no space, and the
helpers that keep a full disk from crashing the server.

``InsufficientStorage`` names the volume by its role (``blob storage``, ``metadata
database``, ``data folder``), which is what an operator configures; the path stays in the
server's log, since clients have no business learning the server's folders. Each HTTP
edge answers it once: 507 Insufficient Storage (``UNAVAILABLE`` in the /v2 envelope,
problem+json on /api/v1).

A shared memory map over a file faults (SIGBUS, which kills the process) when a write
touches a page the filesystem cannot allocate, as on a full disk: :func:`allocate` gives a
file its blocks before it is mapped, so a mapped write never needs one.
:class:`Reserve` is a preallocated file given up so that deletions can be recorded on a
full disk (SQLite needs room in its write-ahead log even to delete).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

BLOB_STORAGE = "blob storage"
METADATA_DATABASE = "metadata database"
DATA_FOLDER = "data folder"

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class InsufficientStorage(Exception):
    """A write failed because ``volume`` has no space left (or the quota is used up)."""

    def __init__(self, volume: str) -> None:
        super().__init__(
            f"insufficient storage: the {volume} volume is full (reads still work; retry once space is freed)"
        )
        self.volume = volume


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` is an operating system error for a full volume or a used-up quota."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


@contextlib.contextmanager
def volume_errors(volume: str) -> Iterator[None]:
    """Turn a full-volume ``OSError`` raised inside into :class:`InsufficientStorage`."""
    try:
        yield
    except OSError as exc:
        if out_of_space(exc):
            raise InsufficientStorage(volume) from exc
        raise


def allocate(fd: int, size: int) -> None:
    """Give the file's first ``size`` bytes real blocks (growing it if shorter); raises
    ``OSError`` (ENOSPC) when the volume cannot hold them, never later on a mapped write."""
    os.posix_fallocate(fd, 0, size)


class Reserve:
    """A preallocated file of ``size`` bytes kept on a volume, released when space must be
    found for a write that frees space, and put back once there is room again."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def held(self) -> bool:
        try:
            return self.path.stat().st_blocks * 512 >= self.size
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Hold the reserve; False if the volume has no room for it now (try again later)."""
        if self.size <= 0 or self.held():
            return self.size > 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                allocate(fd, self.size)
            finally:
                os.close(fd)
        except OSError as exc:
            if not out_of_space(exc):
                raise
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # a partial reserve would hold space without counting as one
            return False
        return True

    def release(self) -> bool:
        """Free the reserve's space; False if there was none to free."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
