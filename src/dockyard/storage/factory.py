"""Pick a driver by name. An unknown name is an error: there is no silent fallback."""

from __future__ import annotations

from pathlib import Path

from dockyard.storage.base import StorageDriver
from dockyard.storage.filesystem import FilesystemDriver
from dockyard.storage.memory import MemoryDriver
from dockyard.storage.s3 import S3Config, S3Driver


class UnknownDriver(ValueError):
    pass


def create_driver(name: str, root: Path | None = None, s3: S3Config | None = None) -> StorageDriver:
    if name == "filesystem":
        if root is None:
            raise ValueError("the filesystem driver needs a root folder")
        return FilesystemDriver(root)
    if name == "memory":
        return MemoryDriver()
    if name == "s3":
        if s3 is None:
            raise ValueError("the s3 driver needs its endpoint, bucket and keys")
        return S3Driver(s3)
    raise UnknownDriver(f"unknown storage driver {name!r}; known: filesystem, memory, s3")
