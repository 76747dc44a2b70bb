"""In-memory driver: the test double above storage. Same contract as the real drivers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from dockyard.storage.base import FileInfo, InvalidOffset, LocalFile, PathNotFound, check_path


class MemoryWriter:
    def __init__(self, driver: MemoryDriver, path: str, initial: bytes) -> None:
        self._driver = driver
        self._path = path
        self._buffer = bytearray(initial)
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._buffer)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("writer is closed")
        self._buffer += data
        self._driver._objects[self._path] = (bytes(self._buffer), time.time())

    async def commit(self) -> None:
        await self.close()

    async def cancel(self) -> None:
        self._closed = True
        self._driver._objects.pop(self._path, None)

    async def close(self) -> None:
        self._closed = True


class MemoryDriver:
    name = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, float]] = {}

    def _get(self, path: str) -> bytes:
        try:
            return self._objects[check_path(path)][0]
        except KeyError:
            raise PathNotFound(path) from None

    def _is_dir(self, path: str) -> bool:
        prefix = check_path(path) + "/"
        return any(key.startswith(prefix) for key in self._objects)

    async def get_content(self, path: str) -> bytes:
        return self._get(path)

    async def put_content(self, path: str, data: bytes) -> None:
        self._objects[check_path(path)] = (bytes(data), time.time())

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._get(path)
        if offset > len(data):
            raise InvalidOffset(f"offset {offset} is past the end ({len(data)}) of {path}")
        end = len(data) if length is None else min(len(data), offset + length)
        if end > offset:
            yield data[offset:end]

    async def writer(self, path: str, append: bool = False) -> MemoryWriter:
        check_path(path)
        initial = self._objects.get(path, (b"", 0.0))[0] if append else b""
        self._objects[path] = (initial, time.time())
        return MemoryWriter(self, path, initial)

    async def stat(self, path: str) -> FileInfo:
        if check_path(path) in self._objects:
            data, modified = self._objects[path]
            return FileInfo(path, len(data), modified)
        if self._is_dir(path):
            return FileInfo(path, 0, time.time(), is_dir=True)
        raise PathNotFound(path)

    async def list(self, prefix: str) -> list[str]:
        folder = check_path(prefix) + "/"
        children = {
            folder + key[len(folder) :].split("/", 1)[0] for key in self._objects if key.startswith(folder)
        }
        if not children:
            raise PathNotFound(prefix)
        return sorted(children)

    async def move(self, source: str, dest: str) -> None:
        source, dest = check_path(source), check_path(dest)
        data = self._objects.pop(source, None)
        if data is None:
            raise PathNotFound(source)
        self._objects[dest] = data

    async def delete(self, path: str) -> None:
        if check_path(path) in self._objects:
            del self._objects[path]
            return
        prefix = path + "/"
        doomed = [key for key in self._objects if key.startswith(prefix)]
        if not doomed:
            raise PathNotFound(path)
        for key in doomed:
            del self._objects[key]

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        check_path(path)
        return None

    async def local_file(self, path: str) -> LocalFile | None:
        self._get(path)
        return None
