"""Sniff and decompress gzip or zstd streams with bounded output per step.

A decompression bomb is only caught in time if no single step can produce much output:
``feed`` yields pieces of at most ``piece_size`` bytes (about 1 MiB), so a caller that
counts pieces as they come stops a 1 KB -> 1 TB stream after a few MiB.

- gzip: ``zlib`` has ``max_length``; concatenated members (pigz, ``cat a.gz b.gz``) are
  read as one stream, as gzip(1) does; trailing zero padding is tolerated.
- zstd: ``zstandard``'s decompressobj has no ``max_length``, and one 4-byte RLE block
  expands to 128 KiB. So the input is cut at block boundaries (RFC 8878 section 3.1.1):
  each block regenerates at most ``Block_Maximum_Size`` (128 KiB), and a call gets at most
  ``piece_size / 128 KiB`` complete blocks. Windows above 128 MiB (``--long=31``) are
  refused, which bounds the decoder's own memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from enum import StrEnum
from typing import Protocol

import zstandard

from dockyard.archive.errors import InvalidArchive, UnsafeArchive

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZIP2_BLOCK_MAGIC = b"1AY&SY"

SNIFF_BYTES = 10  # enough to tell bzip2 ("BZh" + level + block magic) from a tar name
PIECE_SIZE = 1 << 20
MAX_ZSTD_WINDOW = 1 << 27  # zstd's own default limit; --long=31 archives are refused
_ZSTD_BLOCK_MAX = 128 * 1024


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def sniff(prefix: bytes) -> Compression:
    """Tell the compression of a stream from its first ``SNIFF_BYTES`` bytes (or all of a shorter one)."""
    if prefix.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if prefix.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    if prefix.startswith(_XZ_MAGIC):
        raise InvalidArchive("xz-compressed archives are not supported; use gzip, zstd or no compression")
    if prefix[:3] == b"BZh" and prefix[4:10] == _BZIP2_BLOCK_MAGIC:
        raise InvalidArchive("bzip2-compressed archives are not supported; use gzip, zstd or no compression")
    return Compression.NONE


class Decompressor(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decompress ``data`` into pieces of at most the piece size; consume all before the next call."""
        ...

    def close(self) -> None:
        """Raise ``InvalidArchive`` if the stream ended before its end marker."""
        ...


def decompressor(kind: Compression, piece_size: int = PIECE_SIZE) -> Decompressor:
    if kind is Compression.GZIP:
        return GzipDecompressor(piece_size)
    if kind is Compression.ZSTD:
        return ZstdDecompressor(piece_size)
    raise ValueError(f"no decompressor for {kind!r}")


class GzipDecompressor:
    def __init__(self, piece_size: int = PIECE_SIZE) -> None:
        self._piece = piece_size
        self._member: zlib._Decompress | None = None
        self._members = 0
        self._zero_tail = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        pending = data
        while pending:
            if self._member is None:
                if self._members:
                    if not pending.strip(b"\0"):
                        self._zero_tail = True  # tape-style padding after the last member
                        return
                    if self._zero_tail or not GZIP_MAGIC.startswith(pending[:2]):
                        raise InvalidArchive("data after the end of the gzip stream")
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._members += 1
            member = self._member
            while True:
                try:
                    out = member.decompress(pending, self._piece)
                except zlib.error as exc:
                    raise InvalidArchive(f"corrupt gzip stream: {exc}") from None
                if out:
                    yield out
                if member.eof:
                    pending = member.unused_data
                    self._member = None
                    break
                pending = member.unconsumed_tail
                if not pending and len(out) < self._piece:
                    return

    def close(self) -> None:
        if self._member is not None or self._members == 0:
            raise InvalidArchive("the gzip stream is truncated")


class ZstdDecompressor:
    """zstd fed one bounded run of whole blocks at a time (see the module docstring)."""

    _MAGIC, _SKIP, _BLOCK, _CHECKSUM = range(4)

    def __init__(self, piece_size: int = PIECE_SIZE) -> None:
        self._piece = piece_size
        self._blocks_per_call = max(1, piece_size // _ZSTD_BLOCK_MAX)
        self._ended_block = 0
        self._dobj = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW).decompressobj(
            read_across_frames=True
        )
        self._pending = bytearray()
        self._pos = 0  # bytes of _pending that form whole units, ready for the decoder
        self._state = self._MAGIC
        self._skip = 0
        self._checksum = False
        self._frames = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._pending += data
        blocks = 0
        while self._advance():
            blocks += self._ended_block
            if blocks >= self._blocks_per_call:
                yield from self._flush()
                blocks = 0
        yield from self._flush()

    def close(self) -> None:
        if self._state != self._MAGIC or self._pending or self._frames == 0:
            raise InvalidArchive("the zstd stream is truncated")

    def _flush(self) -> Iterator[bytes]:
        if not self._pos:
            return
        chunk = bytes(self._pending[: self._pos])
        del self._pending[: self._pos]
        self._pos = 0
        try:
            out = self._dobj.decompress(chunk)
        except zstandard.ZstdError as exc:
            raise InvalidArchive(f"corrupt zstd stream: {exc}") from None
        for start in range(0, len(out), self._piece):
            yield out[start : start + self._piece]

    def _advance(self) -> bool:
        """Step over one more unit if all its bytes are present; False when more input is needed."""
        self._ended_block = 0
        view = self._pending
        p = self._pos
        avail = len(view) - p
        if self._state == self._MAGIC:
            if avail < 4:
                return False
            magic = bytes(view[p : p + 4])
            if magic == ZSTD_MAGIC:
                if avail < 5:
                    return False
                descriptor = view[p + 4]
                if descriptor & 0x08:
                    raise InvalidArchive("corrupt zstd stream: reserved frame header bit set")
                size = 5 + _frame_header_fields(descriptor)
                if avail < size:
                    return False
                self._checksum = bool(descriptor & 0x04)
                self._frames += 1
                self._pos += size
                self._state = self._BLOCK
                return True
            if magic[0] & 0xF0 == 0x50 and magic[1:] == b"\x2a\x4d\x18":
                if avail < 8:
                    return False
                self._skip = int.from_bytes(view[p + 4 : p + 8], "little")
                self._pos += 8
                self._state = self._SKIP if self._skip else self._MAGIC
                return True
            if self._frames:
                raise InvalidArchive("data after the end of the zstd stream")
            raise InvalidArchive("corrupt zstd stream: bad frame magic")
        if self._state == self._SKIP:
            step = min(avail, self._skip)
            if not step:
                return False
            self._pos += step
            self._skip -= step
            if not self._skip:
                self._state = self._MAGIC
            return True
        if self._state == self._BLOCK:
            if avail < 3:
                return False
            header = int.from_bytes(view[p : p + 3], "little")
            block_type = (header >> 1) & 3
            block_size = header >> 3
            if block_type == 3:
                raise InvalidArchive("corrupt zstd stream: reserved block type")
            if block_size > _ZSTD_BLOCK_MAX:
                raise InvalidArchive("corrupt zstd stream: block larger than 128 KiB")
            body = 1 if block_type == 1 else block_size
            if avail < 3 + body:
                return False
            self._pos += 3 + body
            self._ended_block = 1
            if header & 1:
                self._state = self._CHECKSUM if self._checksum else self._MAGIC
            return True
        if avail < 4:
            return False
        self._pos += 4
        self._state = self._MAGIC
        return True


def _frame_header_fields(descriptor: int) -> int:
    """Bytes of the frame header after the descriptor byte (RFC 8878 section 3.1.1.1)."""
    single_segment = (descriptor >> 5) & 1
    size = 0 if single_segment else 1  # Window_Descriptor
    size += (0, 1, 2, 4)[descriptor & 3]  # Dictionary_ID
    size += (single_segment, 2, 4, 8)[descriptor >> 6]  # Frame_Content_Size
    return size


def check_ratio(compressed: int, uncompressed: int, max_ratio: float, grace: int) -> None:
    """Refuse a stream whose expansion so far is beyond ``max_ratio`` (once past ``grace`` bytes)."""
    if uncompressed > grace and uncompressed > max_ratio * max(compressed, 1):
        raise UnsafeArchive(
            f"decompression bomb: {uncompressed} bytes came out of {compressed} compressed bytes, "
            f"a ratio above the limit of {max_ratio:g}:1"
        )
