"""The archive's bytes past an import's stored checkpoint, kept in shared storage, so that any
replica continues a chunked upload where its last chunk ended.

A checkpoint is taken between tar entries only; a chunk usually ends inside an entry (a
layer). The bytes from the stored checkpoint to the chunk's end live in the import's memory
and nowhere else, so without more a chunk taken by another replica (no sticky sessions) would
have to be sent again from the checkpoint, and a layer larger than a chunk would never get
past it. The journal keeps them::

    archives/<id>/journal/<start>-<end>    the archive's bytes [start, end), zero-padded offsets

Each chunk's bytes are kept in memory as they are fed (references to the request's buffers,
no copy) and written as one segment when the chunk ends, before it is answered (or sooner,
when more than ``MEMORY`` bytes wait); segments wholly before the newest stored checkpoint are
deleted as it advances. An import taking over (:meth:`.live.LiveImports.take_over`) starts from
the checkpoint and replays the segments from there (:func:`replay_plan`): the client goes on
from the offset the last chunk reached, whichever replica took it. Segments are written whole
(``put_content``: atomic on the filesystem driver, one object on S3), so a replica that died
while writing one leaves either all of it or nothing; what it did not write is sent again
(the session's offset is where the journal ends).

The journal is kept when ``DOCKYARD_ARCHIVE_JOURNAL`` is on (replicas without sticky
sessions); it is a second write of the bytes past each checkpoint, so it is off by default (the
worker processes of one server pass a chunk to the one holding its import, and the archive
itself is never written). A one-shot upload (the whole archive in one request) keeps none. A
journal found is replayed whatever the setting.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.imports.sink import session_folder

MEMORY = 64 << 20  # bytes kept in memory before they are written as a segment
_SEGMENT = re.compile(r"(\d{20})-(\d{20})")


def journal_folder(archive_id: str) -> str:
    return f"{session_folder(archive_id)}/journal"


@dataclass(frozen=True)
class Segment:
    path: str
    start: int
    end: int


async def segments(storage: StorageDriver, archive_id: str) -> list[Segment]:
    """The journal's segments, by start."""
    try:
        paths = await storage.list(journal_folder(archive_id))
    except PathNotFound:
        return []
    found = []
    for path in paths:
        match = _SEGMENT.fullmatch(path.rsplit("/", 1)[-1])
        if match is not None:
            found.append(Segment(path, int(match[1]), int(match[2])))
    return sorted(found, key=lambda s: (s.start, s.end))


def replay_plan(found: list[Segment], start: int) -> tuple[list[tuple[Segment, int]], int]:
    """Which segments (and from where in each) give the bytes from ``start`` on without a
    gap, and the offset they reach."""
    plan: list[tuple[Segment, int]] = []
    position = start
    while True:
        covering = [s for s in found if s.start <= position < s.end]
        if not covering:
            return plan, position
        best = max(covering, key=lambda s: s.end)
        plan.append((best, position - best.start))
        position = best.end


async def replay(storage: StorageDriver, plan: list[tuple[Segment, int]]) -> AsyncIterator[bytes]:
    for segment, skip in plan:
        async for chunk in storage.reader(segment.path, skip, segment.end - segment.start - skip):
            yield chunk


class Journal:
    """The bytes one import took past its stored checkpoint (see the module docstring)."""

    def __init__(self, storage: StorageDriver, archive_id: str, end: int, stored: list[Segment]) -> None:
        self.storage = storage
        self.archive_id = archive_id
        self.end = end  # the journal in storage holds the bytes up to here
        self._stored = list(stored)
        self._waiting: list[bytes | memoryview] = []  # from ``end`` on, not written yet
        self._waiting_bytes = 0

    def add(self, chunk: bytes) -> None:
        self._waiting.append(chunk)
        self._waiting_bytes += len(chunk)

    @property
    def full(self) -> bool:
        return self._waiting_bytes >= MEMORY

    async def write(self) -> None:
        """Write what waits as one segment (durable before this returns)."""
        if not self._waiting_bytes:
            return
        start, end = self.end, self.end + self._waiting_bytes
        path = f"{journal_folder(self.archive_id)}/{start:020d}-{end:020d}"
        await self.storage.put_content(path, b"".join(self._waiting))
        self._stored.append(Segment(path, start, end))
        self._waiting, self._waiting_bytes, self.end = [], 0, end

    async def trim(self, before: int) -> None:
        """A checkpoint at ``before`` is stored: what lies before it is not needed any more."""
        if before > self.end:  # some of what waits is before it
            drop = before - self.end
            while self._waiting and drop:
                first = self._waiting[0]
                if len(first) <= drop:
                    self._waiting.pop(0)
                    drop -= len(first)
                    self._waiting_bytes -= len(first)
                else:
                    self._waiting[0] = memoryview(first)[drop:]
                    self._waiting_bytes -= drop
                    drop = 0
            self.end = before
        keep = []
        for segment in self._stored:
            if segment.end <= before:
                with contextlib.suppress(PathNotFound):
                    await self.storage.delete(segment.path)
            else:
                keep.append(segment)
        self._stored = keep


async def remove_journal(storage: StorageDriver, archive_id: str) -> None:
    with contextlib.suppress(PathNotFound):
        await storage.delete(journal_folder(archive_id))
