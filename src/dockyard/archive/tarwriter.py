"""A tar whose every byte is planned before the first is sent.

Headers are computed up front (``tarfile`` builds them: ustar, with a pax record only for
members of 8 GiB and more), so ``TarStream.size`` is exact before streaming (the HTTP
``Content-Length``), and ``stream(offset)`` resumes at any byte (HTTP ``Range``): members
before the offset are skipped without being read, and a blob cut by the offset is opened
at its inner offset, so a resumed download never re-reads what was already sent.

Headers are deterministic (mtime 0, uid/gid 0, mode 0644): the same image gives the same
tar, byte for byte, which is what makes resuming across requests safe.
"""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)

ChunkSource = Callable[[int], AsyncIterator[bytes]]
"""``source(offset)`` yields a blob's bytes from ``offset`` to its end."""


class ArchiveWriteError(RuntimeError):
    """A blob source produced a different number of bytes than it declared."""


@dataclass(frozen=True)
class TarMember:
    name: str
    size: int
    data: bytes | None = None  # small members (JSON)
    source: ChunkSource | None = None  # large members (layers), opened at an offset

    def __post_init__(self) -> None:
        if (self.data is None) == (self.source is None):
            raise ValueError(f"{self.name}: give exactly one of data or source")
        if self.data is not None and len(self.data) != self.size:
            raise ValueError(f"{self.name}: size {self.size} but {len(self.data)} bytes of data")


def member_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


@dataclass(frozen=True)
class _Source:
    name: str
    size: int
    open: ChunkSource


class TarStream:
    """The planned archive: ``size`` bytes, produced by ``stream(offset)``."""

    def __init__(self, members: Sequence[TarMember]) -> None:
        segments: list[bytes | _Source] = []
        pending = bytearray()  # adjacent small pieces are merged into one segment
        names: set[str] = set()
        for member in members:
            if member.name in names:
                raise ValueError(f"duplicate member {member.name}")
            names.add(member.name)
            pending += member_header(member.name, member.size)
            if member.data is not None:
                pending += member.data
            else:
                assert member.source is not None
                segments.append(bytes(pending))
                pending.clear()
                segments.append(_Source(member.name, member.size, member.source))
            pending += bytes(-member.size % BLOCK)
        pending += END_OF_ARCHIVE
        segments.append(bytes(pending))
        self._segments = [s for s in segments if not isinstance(s, bytes) or s]
        self.members = tuple(m.name for m in members)
        self.size = sum(len(s) if isinstance(s, bytes) else s.size for s in self._segments)

    async def stream(self, offset: int = 0) -> AsyncIterator[bytes]:
        """The archive's bytes from ``offset`` (0 <= offset <= size) to the end."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} is outside the archive (0..{self.size})")
        pos = 0
        for segment in self._segments:
            length = len(segment) if isinstance(segment, bytes) else segment.size
            end = pos + length
            if end > offset:
                start = max(0, offset - pos)
                if isinstance(segment, bytes):
                    yield segment[start:] if start else segment
                else:
                    async for chunk in _exact(segment, start):
                        yield chunk
            pos = end


async def _exact(source: _Source, start: int) -> AsyncIterator[bytes]:
    remaining = source.size - start
    async for chunk in source.open(start):
        if len(chunk) > remaining:
            raise ArchiveWriteError(f"{source.name} is larger than its declared {source.size} bytes")
        remaining -= len(chunk)
        if chunk:
            yield chunk
    if remaining:
        raise ArchiveWriteError(
            f"{source.name} ended {remaining} bytes short of its declared {source.size} bytes"
        )
