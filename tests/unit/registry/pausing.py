"""Storage drivers that stop a request at one chosen step, so that a test can run GC right
there: a deterministic interleaving instead of hoping a race happens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.storage.base import FileInfo
from dockyard.storage.filesystem import FilesystemDriver, FilesystemWriter
from dockyard.storage.memory import MemoryDriver


@dataclass
class Gate:
    """Stops the first ``method`` call on a path under ``prefix``: ``reached`` is set, and the
    call goes on once ``release`` is set. Later calls pass."""

    method: str
    prefix: str
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    used: bool = False

    async def check(self, method: str, path: str) -> None:
        if self.used or method != self.method or not path.startswith(self.prefix):
            return
        self.used = True
        self.reached.set()
        await self.release.wait()


class PausingMemoryDriver(MemoryDriver):
    """The memory driver; ``move`` and ``stat`` stop at ``gate`` before they act."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    async def move(self, source: str, dest: str) -> None:
        await self.gate.check("move", dest)
        await super().move(source, dest)

    async def stat(self, path: str) -> FileInfo:
        await self.gate.check("stat", path)
        return await super().stat(path)


class PausingFilesystemDriver(FilesystemDriver):
    """The filesystem driver; ``writer`` stops at ``gate`` once the file exists."""

    def __init__(self, root: Path, gate: Gate) -> None:
        super().__init__(root)
        self.gate = gate

    async def writer(self, path: str, append: bool = False) -> FilesystemWriter:
        made = await super().writer(path, append)
        await self.gate.check("writer", path)
        return made
