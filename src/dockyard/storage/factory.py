"""Pick a driver by name. An unknown name is an error: there is no silent fallback."""

from __future__ import annotations

from pathlib import Path

from dockyard.storage.base import StorageDriver
from dockyard.storage.filesystem import FilesystemDriver
from dockyard.storage.memory import MemoryDriver


class UnknownDriver(ValueError):
    pass


def create_driver(name: str, root: Path | None = None) -> StorageDriver:
    if name == "filesystem":
        if root is None:
            raise ValueError("the filesystem driver needs a root folder")
        return FilesystemDriver(root)
    if name == "memory":
        return MemoryDriver()
    raise UnknownDriver(f"unknown storage driver {name!r}; known: filesystem, memory")
