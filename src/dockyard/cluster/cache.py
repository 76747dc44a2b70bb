"""A per-process cache of the hot lookups (manifest by tag or digest, blob size in a
repository), kept correct across processes and replicas by per-repository generations.

Every write that can change what a lookup returns (manifest PUT and DELETE, tag moves,
blob unlinks, GC) calls :meth:`Generations.changed` for the repository after it commits.
A cached entry remembers the repository's generation from before its database read and is
used only while the generation is unchanged, so an entry read before a change is never
served after the change is announced. Only positive answers are cached (a 404 is always
looked up), and entries also expire after ``ttl`` seconds, a bound on staleness should a
process die between a commit and its announcement.

Two ways to share generations:

- :class:`SharedMemoryGenerations` for the workers of one machine (the SQLite default):
  a small file of counters in the data folder, memory-mapped by every worker; reading a
  generation is a memory read, bumping one takes a file lock. The file's blocks are
  allocated before it is mapped, so a full disk can never fault a worker (SIGBUS);
- :class:`PostgresGenerations` for replicas sharing PostgreSQL: ``NOTIFY`` after the commit,
  and a ``LISTEN`` connection in each process that bumps its local counters. An announcement
  reaches other replicas within the notification's delivery time (well under a millisecond
  on one network); if the listening connection drops, every counter is bumped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import mmap
import os
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import asyncpg

from dockyard.volumes import DATA_FOLDER, allocate, volume_errors

log = logging.getLogger("dockyard.cache")

V = TypeVar("V")
_SLOT = struct.Struct("<Q")
CHANNEL = "dockyard_repository_changed"


class Generations(Protocol):
    def current(self, repository: str) -> int:
        """The repository's generation as this process knows it. Cheap: no I/O."""
        ...

    async def changed(self, repository: str) -> None:
        """Announce that a committed write changed the repository."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class SharedMemoryGenerations:
    """Counters in a memory-mapped file shared by the processes of one machine.

    Repositories hash (crc32, the same in every process) onto ``slots`` counters; two
    repositories sharing a slot only invalidate each other a little more often.
    """

    def __init__(self, path: Path, slots: int = 1 << 16) -> None:
        self.path = path
        self.slots = slots
        self._fd = -1
        self._map: mmap.mmap | None = None

    def _open(self) -> mmap.mmap:
        if self._map is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            size = self.slots * _SLOT.size
            try:
                # Real blocks, not a sparse file: a counter's first write into a hole would
                # need a block, and on a full disk the kernel answers with SIGBUS.
                with volume_errors(DATA_FOLDER):
                    allocate(fd, size)
                self._map = mmap.mmap(fd, size)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        return self._map

    def _offset(self, repository: str) -> int:
        return (zlib.crc32(repository.encode()) % self.slots) * _SLOT.size

    def current(self, repository: str) -> int:
        value: int = _SLOT.unpack_from(self._open(), self._offset(repository))[0]
        return value

    async def changed(self, repository: str) -> None:
        view = self._open()
        offset = self._offset(repository)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            _SLOT.pack_into(view, offset, _SLOT.unpack_from(view, offset)[0] + 1)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    async def start(self) -> None:
        self._open()

    async def stop(self) -> None:
        if self._map is not None:
            self._map.close()
            os.close(self._fd)
            self._map = None


class PostgresGenerations:
    """Local counters, bumped by ``NOTIFY`` from every replica (including this one)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._local: dict[str, int] = {}
        self._epoch = 0  # bumped when notifications may have been missed: everything is stale
        self._listener: asyncpg.Connection | None = None
        self._notifier: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None

    def current(self, repository: str) -> int:
        return (self._epoch << 32) + self._local.get(repository, 0)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        repository = str(payload)
        self._local[repository] = self._local.get(repository, 0) + 1

    async def changed(self, repository: str) -> None:
        self._on_notify(None, 0, CHANNEL, repository)  # this process sees its own write at once
        async with self._lock:
            try:
                if self._notifier is None or self._notifier.is_closed():
                    self._notifier = await asyncpg.connect(self.dsn)
                await self._notifier.execute("SELECT pg_notify($1, $2)", CHANNEL, repository)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("could not announce a change of %s to other replicas: %s", repository, exc)

    async def start(self) -> None:
        await self._listen()
        self._watchdog = asyncio.create_task(self._watch())

    async def _listen(self) -> None:
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(CHANNEL, self._on_notify)
        self._epoch += 1  # whatever happened while not listening is unknown

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._listener is None or self._listener.is_closed():
                with contextlib.suppress(OSError, asyncpg.PostgresError):
                    await self._listen()

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for conn in (self._listener, self._notifier):
            if conn is not None and not conn.is_closed():
                await conn.close()


def _fixed_size(_value: object) -> int:
    return 64


class LookupCache(Generic[V]):
    """Positive lookups keyed by (repository, key), valid while the generation holds.

    Least recently used entries go first, to keep within ``max_entries`` and ``max_bytes``
    (as ``size_of`` weighs values); a value over ``max_value_bytes`` is not kept at all.
    """

    def __init__(
        self,
        generations: Generations,
        max_entries: int = 10_000,
        ttl: float = 30.0,
        *,
        size_of: Callable[[V], int] = _fixed_size,
        max_bytes: int = 64 << 20,
        max_value_bytes: int = 256 << 10,
    ) -> None:
        self.generations = generations
        self.max_entries = max_entries
        self.ttl = ttl
        self.size_of = size_of
        self.max_bytes = max_bytes
        self.max_value_bytes = max_value_bytes
        self._bytes = 0
        # (repository, key) -> (generation, stored at, value, size)
        self._entries: OrderedDict[tuple[str, str], tuple[int, float, V, int]] = OrderedDict()

    def get(self, repository: str, key: str) -> tuple[int, V | None]:
        """(generation to store with a fresh lookup, the cached value or None)."""
        generation = self.generations.current(repository)
        entry = self._entries.get((repository, key))
        if entry is not None:
            if entry[0] == generation and time.monotonic() - entry[1] < self.ttl:
                self._entries.move_to_end((repository, key))
                return generation, entry[2]
            self._discard((repository, key))
        return generation, None

    def put(self, repository: str, key: str, generation: int, value: V) -> None:
        self._discard((repository, key))
        size = self.size_of(value)
        if size > self.max_value_bytes:
            return
        self._entries[(repository, key)] = (generation, time.monotonic(), value, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= self._entries.popitem(last=False)[1][3]

    def _discard(self, entry_key: tuple[str, str]) -> None:
        entry = self._entries.pop(entry_key, None)
        if entry is not None:
            self._bytes -= entry[3]
