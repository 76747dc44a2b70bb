"""Read an untrusted tar (plain, gzip or zstd) from an async byte stream, one entry at a time.

Why an own header parser and not ``tarfile`` in ``r|`` mode: ``tarfile`` reads from a
blocking file object, and the upload arrives as an async iterator of chunks; bridging the
two needs a thread per upload. A parser over the async stream is small, accepts only
what container archives need (ustar, pax, GNU long names, GNU base-256 sizes) and refuses
everything else by name, so no feature we never asked for (sparse files, multi-volume,
global pax paths) can reinterpret the bytes behind our back.

Refused with ``UnsafeArchive``: absolute names, ``..`` components, backslashes, names over
``max_name_length``, device and FIFO entries (unless ``TarLimits.devices``: an image
layer's ``/dev`` nodes, handed on as ``SPECIAL`` with no content), duplicate names (after
normalising ``./`` and ``//``) and a name used both as a file and as a directory, more than ``max_entries``
entries, more than ``max_total_size`` uncompressed bytes, a compression ratio above
``max_ratio`` (checked while streaming; see ``decompress``), and non-zero data after the end
of the archive (another reader would see entries we did not check).

Links (``LinkPolicy``): docker save before 25 wrote ``<id>/layer.tar`` as a symlink to an
identical ``../<other id>/layer.tar``; containerd's importer and containers/image follow
such links inside the archive. So ``INSIDE`` (the default) allows a symlink or hard link
whose target, resolved inside the archive, is a regular file entry; anything else (absolute
target, target outside, to a directory, to another link, dangling) is refused. Hard link
targets must come earlier (tar semantics); symlink targets are checked when the archive ends.
``REFUSE`` refuses every link. ``UNCHECKED`` (an image layer read for its files, whose links
resolve in the merged filesystem at run time) hands a link's target on as written and never
follows it.

Content is streamed: an entry's ``chunks()`` must be consumed before the next entry is
requested (content left unread is skipped). Nothing is buffered beyond one decompressed
piece (about 1 MiB) and one pax header (at most ``max_pax_size``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from dockyard.archive.decompress import (
    SNIFF_BYTES,
    Compression,
    Decompressor,
    check_ratio,
    decompressor,
    sniff,
)
from dockyard.archive.errors import InvalidArchive, UnsafeArchive
from dockyard.archive.tarheader import (
    BLOCK,
    Header,
    decode,
    looks_like_tar,
    normalize_name,
    parse_header,
    parse_pax,
)

GiB = 1 << 30
_PAX_SIZE = re.compile(r"[0-9]{1,18}")


class LinkPolicy(Enum):
    REFUSE = "refuse"
    INSIDE = "inside"
    UNCHECKED = "unchecked"  # an image layer's links: kept as written, never followed


@dataclass(frozen=True)
class TarLimits:
    max_entries: int = 20_000
    max_name_length: int = 512  # bytes (UTF-8) of a normalised name
    max_total_size: int = 64 * GiB  # uncompressed tar bytes, headers and padding included
    max_ratio: float = 200.0  # decompressed / compressed
    ratio_grace: int = 256 << 20  # the ratio is only enforced past this many decompressed bytes
    max_pax_size: int = 1 << 20
    links: LinkPolicy = LinkPolicy.INSIDE
    devices: bool = False  # True: device and FIFO entries are handed on (kind SPECIAL, no content)


@dataclass(frozen=True)
class ReaderState:
    """Where an uncompressed archive can be read on from, between two entries: what the
    reader knows of the entries before ``offset`` (see ``SafeTarReader.state``)."""

    offset: int  # bytes of the archive before the next entry's header
    entries: int
    kinds: dict[str, str]  # name -> EntryKind value, in archive order
    dirs: list[str]
    symlinks: dict[str, str]
    links: dict[str, str]


class EntryKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    SPECIAL = "special"  # a device or FIFO, only where ``TarLimits.devices`` allows them


_FILE_TYPES = {b"0": EntryKind.FILE, b"\0": EntryKind.FILE, b"7": EntryKind.FILE}
_KINDS = {**_FILE_TYPES, b"1": EntryKind.HARDLINK, b"2": EntryKind.SYMLINK, b"5": EntryKind.DIRECTORY}
_DEVICES = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_EXTENDED = {b"x", b"g", b"L", b"K"}


class TarEntry:
    """One entry; read its content with ``chunks()`` (once) before asking for the next entry."""

    def __init__(
        self, reader: SafeTarReader, name: str, kind: EntryKind, size: int, link_target: str | None
    ) -> None:
        self.name = name
        self.kind = kind
        self.size = size
        self.link_target = link_target  # normalised archive path, for links
        self._reader = reader
        self._remaining = size
        self._started = False

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._reader.current is not self:
            raise RuntimeError(f"{self.name!r} is no longer the current entry")
        if self._started:
            raise RuntimeError(f"the content of {self.name!r} was already read")
        self._started = True
        while self._remaining:
            if self._reader.current is not self:
                raise RuntimeError(f"{self.name!r} is no longer the current entry")
            data = await self._reader.input.read_some(self._remaining)
            self._remaining -= len(data)
            yield data

    async def read(self, limit: int) -> bytes:
        """The whole content, refused when larger than ``limit``."""
        if self.size > limit:
            raise UnsafeArchive(f"{self.name} is {self.size} bytes; at most {limit} are allowed here")
        return b"".join([chunk async for chunk in self.chunks()])

    async def _skip_rest(self) -> None:
        self._started = True
        await self._reader.input.skip(self._remaining)
        self._remaining = 0


class _Input:
    """Decompressed bytes of the source, with exact reads and the size and ratio limits."""

    def __init__(self, source: AsyncIterable[bytes], limits: TarLimits) -> None:
        self._source = aiter(source)
        self._limits = limits
        self._decoder: Decompressor | None = None
        self._pieces: Iterator[bytes] = iter(())
        self._buf = b""
        self._pos = 0
        self.compression: Compression | None = None
        self.bytes_in = 0  # as received
        self.bytes_out = 0  # after decompression

    def resume_at(self, offset: int) -> None:
        """Continue an uncompressed archive whose first ``offset`` bytes were read before."""
        self.compression = Compression.NONE
        self.bytes_in = self.bytes_out = offset

    @property
    def consumed(self) -> int:
        """Bytes of the (decompressed) stream handed out so far."""
        return self.bytes_out - (len(self._buf) - self._pos)

    async def _raw(self) -> bytes | None:
        async for chunk in self._source:
            if chunk:
                self.bytes_in += len(chunk)
                return bytes(chunk)
        return None

    async def _start(self) -> None:
        head = b""
        while len(head) < SNIFF_BYTES:
            chunk = await self._raw()
            if chunk is None:
                break
            head += chunk
        self.compression = sniff(head)
        if self.compression is not Compression.NONE:
            self._decoder = decompressor(self.compression)
            self._pieces = self._decoder.feed(head)
        else:
            self._pieces = iter((head,))

    async def _next_piece(self) -> bytes | None:
        if self.compression is None:
            await self._start()
        while True:
            # Decoded lazily, one bounded piece at a time, so limits are checked in between.
            for piece in self._pieces:
                if piece:
                    return piece
            chunk = await self._raw()
            if chunk is None:
                if self._decoder is not None:
                    self._decoder.close()
                return None
            self._pieces = self._decoder.feed(chunk) if self._decoder is not None else iter((chunk,))

    async def _fill(self) -> bool:
        """Make more decompressed bytes available; False at the end of the stream."""
        piece = await self._next_piece()
        if piece is None:
            return False
        self.bytes_out += len(piece)
        if self.bytes_out > self._limits.max_total_size:
            raise UnsafeArchive(
                f"the archive is larger than the limit of {self._limits.max_total_size} uncompressed bytes"
            )
        if self._decoder is not None:
            check_ratio(self.bytes_in, self.bytes_out, self._limits.max_ratio, self._limits.ratio_grace)
        self._buf = self._buf[self._pos :] + piece if self._pos < len(self._buf) else piece
        self._pos = 0
        return True

    async def read_some(self, limit: int) -> bytes:
        """Between 1 and ``limit`` bytes; refused as truncated at the end of the stream."""
        if self._pos >= len(self._buf) and not await self._fill():
            raise InvalidArchive("the archive is truncated")
        end = min(len(self._buf), self._pos + limit)
        # Hand out whole pieces without copying them.
        data = self._buf if self._pos == 0 and end == len(self._buf) else self._buf[self._pos : end]
        self._pos = end
        return data

    async def read_exact(self, size: int) -> bytes:
        parts: list[bytes] = []
        while size:
            data = await self.read_some(size)
            parts.append(data)
            size -= len(data)
        return b"".join(parts)

    async def skip(self, size: int) -> None:
        while size:
            size -= len(await self.read_some(size))

    async def at_end(self) -> bool:
        return self._pos >= len(self._buf) and not await self._fill()


@dataclass
class _Pending:
    """Extended headers (pax, GNU long names) waiting for the entry they describe."""

    path: str | None = None
    linkpath: str | None = None
    size: int | None = None


class SafeTarReader:
    """Iterate with ``async for entry in reader``; see the module docstring for what is refused."""

    def __init__(
        self,
        source: AsyncIterable[bytes],
        limits: TarLimits | None = None,
        resume: ReaderState | None = None,
        on_boundary: Callable[[int], None] | None = None,
    ) -> None:
        """``resume``: ``source`` starts at ``resume.offset`` of an uncompressed archive whose
        earlier entries an earlier reader checked (``state()``). ``on_boundary(offset)`` is
        called between entries, when ``state()`` can be taken."""
        self.limits = limits or TarLimits()
        self.input = _Input(source, self.limits)
        self.current: TarEntry | None = None
        self._kinds: dict[str, EntryKind] = {}
        self._dirs: set[str] = set()
        self._symlinks: dict[str, str] = {}
        self._links: dict[str, str] = {}
        self._entries = 0
        self._finished = False
        self._resumed = resume is not None
        self._on_boundary = on_boundary
        if resume is not None:
            self.input.resume_at(resume.offset)
            self._entries = resume.entries
            self._kinds = {name: EntryKind(kind) for name, kind in resume.kinds.items()}
            self._dirs = set(resume.dirs)
            self._symlinks = dict(resume.symlinks)
            self._links = dict(resume.links)

    @property
    def resumable(self) -> bool:
        """Whether ``state()`` can be resumed from: only uncompressed archives can."""
        return self.input.compression is Compression.NONE

    def state(self) -> ReaderState:
        """The reader between two entries (in ``on_boundary``), to resume from later."""
        if self.current is not None or not self.resumable:
            raise RuntimeError("a reader can be resumed only between entries of an uncompressed archive")
        return ReaderState(
            offset=self.input.consumed,
            entries=self._entries,
            kinds={name: kind.value for name, kind in self._kinds.items()},
            dirs=sorted(self._dirs),
            symlinks=dict(self._symlinks),
            links=dict(self._links),
        )

    @property
    def compression(self) -> Compression | None:
        """The outer compression, known once the first entry was read."""
        return self.input.compression

    @property
    def bytes_in(self) -> int:
        """Bytes received so far (compressed), for progress reports."""
        return self.input.bytes_in

    @property
    def links(self) -> Mapping[str, str]:
        """Link name -> the regular file it points at; complete once iteration has finished."""
        if not self._finished:
            raise RuntimeError("links are known once the whole archive was read")
        return dict(self._links)

    def files(self) -> list[str]:
        """Names of the regular file entries read so far."""
        return [name for name, kind in self._kinds.items() if kind is EntryKind.FILE]

    def __aiter__(self) -> AsyncIterator[TarEntry]:
        return self._entries_iter()

    async def _entries_iter(self) -> AsyncIterator[TarEntry]:
        if self._finished or (self._entries and not self._resumed):
            raise RuntimeError("a SafeTarReader can be iterated once")
        self._resumed = False
        while True:
            entry = await self._next_entry()
            if entry is None:
                break
            self.current = entry
            yield entry
            await entry._skip_rest()
            await self.input.skip(-entry.size % BLOCK)
            self.current = None
            if self._on_boundary is not None and self.resumable:
                self._on_boundary(self.input.consumed)
        self._check_symlinks()
        self._finished = True

    async def _next_entry(self) -> TarEntry | None:
        pending = _Pending()
        while True:
            if await self.input.at_end():
                raise InvalidArchive("the archive is truncated (no end-of-archive marker)")
            block = await self.input.read_exact(BLOCK)
            if not block.strip(b"\0"):
                await self._drain_trailer()
                return None
            self._entries += 1
            if self._entries > self.limits.max_entries:
                raise UnsafeArchive(f"the archive has more than {self.limits.max_entries} entries")
            header = parse_header(block)
            typeflag = header.typeflag
            if typeflag in _EXTENDED:
                await self._read_extended(header, pending)
                continue
            return self._make_entry(header, pending)

    async def _read_extended(self, header: Header, pending: _Pending) -> None:
        if header.size > self.limits.max_pax_size:
            raise UnsafeArchive(f"an extended header of {header.size} bytes is above the limit")
        data = await self.input.read_exact(header.size)
        await self.input.skip(-header.size % BLOCK)
        if header.typeflag == b"L":
            pending.path = decode(data.split(b"\0", 1)[0], "long name")
        elif header.typeflag == b"K":
            pending.linkpath = decode(data.split(b"\0", 1)[0], "long link name")
        else:
            records = parse_pax(data)
            if header.typeflag == b"g":
                if {"path", "linkpath", "size"} & records.keys():
                    raise UnsafeArchive("global pax headers may not set path, linkpath or size")
                return
            if "path" in records:
                pending.path = records["path"]
            if "linkpath" in records:
                pending.linkpath = records["linkpath"]
            if "size" in records:
                # ASCII digits ('²' is a digit to str.isdigit), few enough for int() and int64.
                if not _PAX_SIZE.fullmatch(records["size"]):
                    raise InvalidArchive(f"invalid pax size {records['size'][:40]!r}")
                pending.size = int(records["size"])

    def _make_entry(self, header: Header, pending: _Pending) -> TarEntry:
        raw_name = pending.path if pending.path is not None else header.name
        size = pending.size if pending.size is not None else header.size
        typeflag = header.typeflag
        if typeflag in _DEVICES and not self.limits.devices:
            raise UnsafeArchive(f"{_DEVICES[typeflag]} entries are not allowed: {raw_name[:200]!r}")
        kind = EntryKind.SPECIAL if typeflag in _DEVICES else _KINDS.get(typeflag)
        if kind is None:
            raise UnsafeArchive(f"unsupported tar entry type {typeflag!r} for {raw_name[:200]!r}")
        if kind is EntryKind.FILE and raw_name.endswith("/"):
            kind = EntryKind.DIRECTORY  # pre-POSIX directories
        name = normalize_name(raw_name)
        if len(name.encode()) > self.limits.max_name_length:
            raise UnsafeArchive(
                f"entry name of {len(name.encode())} bytes is above the limit of "
                f"{self.limits.max_name_length}: {name[:100]!r}..."
            )
        if name == ".":
            if kind is not EntryKind.DIRECTORY:
                raise UnsafeArchive("an entry that is not a directory names the archive root")
            return TarEntry(self, name, kind, 0, None)
        if kind is not EntryKind.FILE and size:
            raise UnsafeArchive(f"{kind} entry {name!r} carries {size} bytes of content")
        if self.input.bytes_out + size > self.limits.max_total_size:
            raise UnsafeArchive(
                f"{name} declares {size} bytes; the archive would exceed the limit of "
                f"{self.limits.max_total_size} uncompressed bytes"
            )
        target = None
        if kind in (EntryKind.SYMLINK, EntryKind.HARDLINK):
            raw_target = pending.linkpath if pending.linkpath is not None else header.linkname
            target = self._link_target(name, kind, raw_target)
        self._register(name, kind)
        return TarEntry(self, name, kind, size, target)

    def _link_target(self, name: str, kind: EntryKind, raw_target: str) -> str:
        if self.limits.links is LinkPolicy.REFUSE:
            raise UnsafeArchive(f"links are not allowed in this archive: {name} -> {raw_target[:200]}")
        if self.limits.links is LinkPolicy.UNCHECKED:
            return raw_target
        if raw_target.startswith("/"):
            raise UnsafeArchive(
                f"{kind} {name} points outside the archive (absolute target {raw_target[:200]})"
            )
        joined = (
            posixpath.join(posixpath.dirname(name), raw_target) if kind is EntryKind.SYMLINK else raw_target
        )
        resolved = posixpath.normpath(joined) if joined else ""
        if resolved in ("", ".") or resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchive(f"{kind} {name} points outside the archive: {raw_target[:200]}")
        target = normalize_name(resolved, "link target")
        if kind is EntryKind.HARDLINK:
            if self._kinds.get(target) is not EntryKind.FILE:
                raise UnsafeArchive(f"hard link {name} must point at an earlier regular file, not {target}")
            self._links[name] = target
        else:
            self._symlinks[name] = target
        return target

    def _register(self, name: str, kind: EntryKind) -> None:
        previous = self._kinds.get(name)
        if previous is not None:
            raise UnsafeArchive(f"duplicate entry in the archive: {name}")
        if name in self._dirs and kind is not EntryKind.DIRECTORY:
            raise UnsafeArchive(f"{name} is used both as a directory and as a {kind}")
        parent = posixpath.dirname(name)
        while parent:
            parent_kind = self._kinds.get(parent)
            if parent_kind is not None and parent_kind is not EntryKind.DIRECTORY:
                raise UnsafeArchive(f"{name} is inside {parent}, which is a {parent_kind}, not a directory")
            if parent in self._dirs:
                break
            self._dirs.add(parent)
            parent = posixpath.dirname(parent)
        self._kinds[name] = kind

    def _check_symlinks(self) -> None:
        for name, target in self._symlinks.items():
            kind = self._kinds.get(target)
            if kind is not EntryKind.FILE:
                what = "does not exist" if kind is None else f"is a {kind}"
                raise UnsafeArchive(
                    f"symlink {name} points at {target}, which {what} (must be a regular file)"
                )
            self._links[name] = target

    async def _drain_trailer(self) -> None:
        """Read past the end-of-archive marker to the end of the stream: only zeros may follow."""
        while not await self.input.at_end():
            data = await self.input.read_some(1 << 20)
            if data.strip(b"\0"):
                raise UnsafeArchive("data after the end of the tar archive")


__all__ = [
    "BLOCK",
    "EntryKind",
    "LinkPolicy",
    "ReaderState",
    "SafeTarReader",
    "TarEntry",
    "TarLimits",
    "looks_like_tar",
    "normalize_name",
]
