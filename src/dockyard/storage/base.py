"""The storage driver contract.

Paths are ``/``-separated keys such as ``blobs/sha256/ab/abcd.../data``, never starting with
``/`` and never containing ``..``; drivers reject anything else with ``InvalidPath``.
Every driver passes the one contract suite in ``tests/contract/test_storage_contract.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """Base of the errors a driver raises."""


class StorageUnavailable(StorageError):
    """The storage service refused or did not answer (S3 down, throttling, access denied): the
    request may succeed later; answered 503, and logged for the operator."""


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid storage path: {path!r}")
        self.path = path


class InvalidOffset(StorageError):
    pass


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified: float  # seconds since the epoch
    is_dir: bool = False


@dataclass(frozen=True)
class LocalFile:
    """A byte range of a file on the local filesystem, for zero-copy (sendfile) responses."""

    path: str
    size: int


class FileWriter(Protocol):
    """Appends to one object.

    Partial content may be visible at the path while writing, so callers write to scratch
    paths (``uploads/...``) and ``move`` a committed object to its final path.

    ``size`` counts every byte written so far, including what earlier writers had written
    when resuming. ``commit`` makes the bytes durable (fsync or the remote equivalent).
    ``cancel`` discards everything written; ``close`` keeps what was written for a later
    resume without making it durable.
    """

    @property
    def size(self) -> int: ...

    async def write(self, data: bytes | bytearray | memoryview) -> None: ...

    async def commit(self) -> None: ...

    async def cancel(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class StorageDriver(Protocol):
    name: str

    async def get_content(self, path: str) -> bytes:
        """The whole object. Raises ``PathNotFound``. For small objects only."""
        ...

    async def put_content(self, path: str, data: bytes) -> None:
        """Write the whole object atomically: readers see the old content or the new, never a mix."""
        ...

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (default: to the end) from ``offset``, in large chunks.

        Raises ``PathNotFound`` on first iteration if the object is missing and
        ``InvalidOffset`` if ``offset`` is past its end.
        """
        ...

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        """A writer for ``path``; with ``append`` it resumes after what was written before."""
        ...

    async def stat(self, path: str) -> FileInfo:
        """Size and modification time. Raises ``PathNotFound``."""
        ...

    async def list(self, prefix: str) -> list[str]:
        """Direct children (full paths) under the folder ``prefix``. Raises ``PathNotFound``."""
        ...

    async def move(self, source: str, dest: str) -> None:
        """Atomically replace ``dest`` with ``source`` (``source`` no longer exists afterwards)."""
        ...

    async def delete(self, path: str) -> None:
        """Delete an object or a whole folder recursively. Raises ``PathNotFound``."""
        ...

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A URL a client may fetch the object from directly, or ``None`` to serve it ourselves."""
        ...

    async def local_file(self, path: str) -> LocalFile | None:
        """The object's local file for zero-copy sends, or ``None`` when it is not on local disk.

        Raises ``PathNotFound``.
        """
        ...


def check_path(path: str) -> str:
    if (
        not path
        or path.startswith("/")
        or path.endswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise InvalidPath(path)
    return path
