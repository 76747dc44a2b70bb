"""Filesystem driver: objects are files under a root folder.

``put_content`` writes under a temporary name and renames into place, so readers never see
a partial object; a crash leaves at worst a ``.tmp-*`` file (``purge_temporaries``).
``writer`` appends to the path itself: callers stream into scratch paths and ``move`` the
committed object into place (an atomic rename, with the folder fsynced). Folders exist only
through their objects: emptied ones are removed. Large reads and writes run in threads.
A write that finds the volume full raises :class:`~dockyard.volumes.InsufficientStorage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.storage.base import FileInfo, InvalidOffset, LocalFile, PathNotFound, check_path
from dockyard.volumes import BLOB_STORAGE, volume_errors

CHUNK = 4 * 1024 * 1024
SYNC_EVERY = 64 * 1024 * 1024
DIRECT_ALIGN = 4096
_TMP_PREFIX = ".tmp-"


class FilesystemWriter:
    """Appends in a worker thread, bypassing the page cache where it can.

    Writing a GiB through the page cache costs about two seconds of CPU on these machines
    before the disk even starts, so aligned data at an aligned offset (the 4 MiB upload
    buffers are page-aligned memory maps) goes out with ``O_DIRECT`` on a second
    descriptor; anything unaligned, and everything on filesystems that refuse
    ``O_DIRECT``, is written normally and flushed (``fdatasync``) every ``SYNC_EVERY``
    bytes, so the disk works while the rest arrives instead of all at ``commit``.
    """

    def __init__(self, fd: int, size: int, path: Path) -> None:
        self._fd: int | None = fd
        self._size = size
        self._path = path
        self._unsynced = 0
        self._direct: int | None = None
        self._direct_ok = hasattr(os, "O_DIRECT")

    @property
    def size(self) -> int:
        return self._size

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ValueError("writer is closed")
        return self._fd

    def write_sync(self, data: bytes | bytearray | memoryview) -> None:
        """Blocking write, for callers that already run in a worker thread."""
        with volume_errors(BLOB_STORAGE):
            self._write_sync(data)

    def _write_sync(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._require_fd()
        view = memoryview(data).cast("B")
        view = view[self._write_direct(view) :]
        buffered = len(view)
        while view:
            # At our own offset: what went out with O_DIRECT did not move this descriptor's.
            written = os.pwrite(fd, view, self._size + buffered - len(view))
            view = view[written:]
        self._size += buffered
        self._unsynced += buffered
        if self._unsynced >= SYNC_EVERY:
            os.fdatasync(fd)
            self._unsynced = 0

    def _write_direct(self, view: memoryview) -> int:
        """Write the aligned prefix of ``view`` with O_DIRECT; how many bytes were written."""
        whole = len(view) - len(view) % DIRECT_ALIGN
        if not self._direct_ok or whole == 0 or self._size % DIRECT_ALIGN or not _aligned(view):
            return 0
        try:
            if self._direct is None:
                self._direct = os.open(self._path, os.O_WRONLY | os.O_DIRECT)
            done = 0
            while done < whole:
                done += os.pwrite(self._direct, view[done:whole], self._size + done)
                if done % DIRECT_ALIGN:
                    break  # a short write left us unaligned: the rest goes the normal way
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._direct_ok = False  # this filesystem does not do O_DIRECT
            return 0
        self._size += done
        return done

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) < 65536 and self._unsynced + len(data) < SYNC_EVERY:
            self.write_sync(data)  # small and no flush due: not worth a thread hand-off
        else:
            await asyncio.to_thread(self.write_sync, data)

    async def commit(self) -> None:
        fd = self._require_fd()
        with volume_errors(BLOB_STORAGE):  # delayed allocation may find the disk full only now
            await asyncio.to_thread(os.fsync, fd)
        await self.close()

    async def cancel(self) -> None:
        await self.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def close(self) -> None:
        if self._direct is not None:
            direct, self._direct = self._direct, None
            os.close(direct)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _aligned(view: memoryview) -> bool:
    """Whether the buffer's memory starts on a DIRECT_ALIGN boundary (writable buffers only)."""
    if view.readonly:
        return False
    return ctypes.addressof(ctypes.c_char.from_buffer(view)) % DIRECT_ALIGN == 0


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _full(self, path: str) -> Path:
        return self.root / check_path(path)

    async def get_content(self, path: str) -> bytes:
        full = self._full(path)
        try:
            return await asyncio.to_thread(full.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise PathNotFound(path) from None

    async def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        with volume_errors(BLOB_STORAGE):
            await asyncio.to_thread(_atomic_write, full, data)

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        full = self._full(path)
        try:
            fd = os.open(full, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise PathNotFound(path) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PathNotFound(path)
            size = st.st_size
            if offset > size:
                raise InvalidOffset(f"offset {offset} is past the end ({size}) of {path}")
            remaining = size - offset if length is None else min(length, size - offset)
            while remaining > 0:
                chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK, remaining), offset)
                if not chunk:
                    break
                offset += len(chunk)
                remaining -= len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def writer(self, path: str, append: bool = False) -> FilesystemWriter:
        full = self._full(path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        for _attempt in range(3):
            try:
                with volume_errors(BLOB_STORAGE):
                    full.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(full, flags, 0o644)
                break
            except FileNotFoundError:
                continue  # a concurrent prune removed the folder: make it again
        else:
            raise PathNotFound(path)
        size = os.fstat(fd).st_size if append else 0
        return FilesystemWriter(fd, size, full)

    async def stat(self, path: str) -> FileInfo:
        full = self._full(path)
        try:
            st = full.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = full.is_dir()
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    async def list(self, prefix: str) -> list[str]:
        full = self._full(prefix)
        try:
            names = await asyncio.to_thread(os.listdir, full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(prefix) from None
        return sorted(f"{prefix}/{n}" for n in names if not n.startswith(_TMP_PREFIX))

    async def move(self, source: str, dest: str) -> None:
        src, dst = self._full(source), self._full(dest)
        for _attempt in range(3):
            try:
                with volume_errors(BLOB_STORAGE):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dst)
            except (FileNotFoundError, NotADirectoryError):
                if src.is_file():
                    continue  # a concurrent prune removed dst's folder: make it again
                raise PathNotFound(source) from None
            await asyncio.to_thread(_fsync_dir, dst.parent)  # the rename itself survives a power cut
            self._prune(src.parent)
            return
        raise PathNotFound(dest)

    async def delete(self, path: str) -> None:
        full = self._full(path)
        if full.is_dir():
            await asyncio.to_thread(shutil.rmtree, full)
        else:
            try:
                full.unlink()
            except (FileNotFoundError, NotADirectoryError):
                raise PathNotFound(path) from None
        self._prune(full.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty up to the root: a folder exists only through its objects."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        check_path(path)
        return None

    async def local_file(self, path: str) -> LocalFile | None:
        full = self._full(path)
        try:
            st = full.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        if not stat.S_ISREG(st.st_mode):
            raise PathNotFound(path)
        return LocalFile(str(full), st.st_size)

    def purge_temporaries(self) -> int:
        """Remove ``.tmp-*`` files a crash may have left. Run at start-up."""
        removed = 0
        for tmp in self.root.rglob(f"{_TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed += 1
        return removed


def _atomic_write(full: Path, data: bytes) -> None:
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, full)
