"""Compress a layer while hashing both sides, in one pass over the bytes.

A docker-save layer is an uncompressed tar; a registry stores it compressed. The diff_id
(sha256 of the tar, named in the image config) and the blob digest (sha256 of the
compressed bytes, named in the manifest) are both needed, and the bytes pass once:
``LayerCompressor.update`` hashes its input, compresses it and (unless the caller's sink
hashes what it stores anyway: ``hash_output=False``) hashes the output.

``UncompressedHasher`` is the other direction: the diff_id of an already compressed layer,
by decompressing it in bounded pieces that are hashed and dropped.

gzip is written on several cores (:class:`ParallelGzip`, our own because no kept library
does it in-process: Python's zlib compresses one stream on one thread, and pigz is a
subprocess): the tar is cut in blocks of ``GZIP_BLOCK`` bytes, each compressed as raw deflate
on a worker thread (zlib lets go of the GIL), primed with the 32 KiB before it and ended with
a sync flush, so the blocks join into one deflate stream in one gzip member, as pigz writes
it (every gzip reader reads it; the ratio is within a fraction of a percent of one stream's).
The output depends only on the level and the block size, never on the number of threads or
the chunks it was fed in: the same tar gives the same blob digest on any machine, so
re-importing an archive deduplicates (the header has mtime 0). Default levels match what
docker and containerd use: gzip 6 (Go's DefaultCompression), zstd 3.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import zstandard

from dockyard.archive.decompress import Compression, decompressor
from dockyard.archive.errors import UnsafeArchive
from dockyard.archive.media import oci_layer_type
from dockyard.oci.digest import Digest

DEFAULT_LEVELS = {Compression.GZIP: 6, Compression.ZSTD: 3}
GZIP_BLOCK = 1 << 20  # bytes of the tar per deflate block (part of the output's definition)
WINDOW = 32 * 1024  # deflate's window: what a block is primed with
_OS_UNIX = 3  # the gzip header's OS byte, as zlib writes it

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """The compression threads, one per core, shared by every layer being compressed."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="gzip")
        return _pool


def _deflate(block: bytes, level: int, primer: bytes, last: bool) -> bytes:
    """One block as raw deflate, primed with the bytes before it; a sync flush ends all but
    the last, so that the next block's output follows on a byte boundary."""
    if primer:
        engine = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=primer)
    else:
        engine = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return engine.compress(block) + engine.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzip:
    """A gzip compressor (``compress``, then ``flush`` once) whose blocks are compressed on the
    shared threads; at most ``2 * threads`` blocks are in flight, so memory stays bounded."""

    def __init__(self, level: int, block: int = GZIP_BLOCK) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip levels are 0 to 9, not {level}")
        self._level = level
        self._block = block
        self._pool = _threads()
        self._in_flight = 2 * (os.cpu_count() or 1)
        self._pending = bytearray()
        self._primer = b""
        self._crc = 0
        self._size = 0
        self._jobs: deque[Future[bytes]] = deque()
        xfl = 2 if level == 9 else 4 if level < 2 else 0  # as zlib's own gzip header
        self._head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, _OS_UNIX])

    def compress(self, data: bytes, /) -> bytes:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._pending += data
        while len(self._pending) >= self._block:
            self._submit(bytes(self._pending[: self._block]), last=False)
            del self._pending[: self._block]
        return self._collect(final=False)

    def flush(self) -> bytes:
        self._submit(bytes(self._pending), last=True)
        self._pending = bytearray()
        trailer = struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)
        return self._collect(final=True) + trailer

    def _submit(self, block: bytes, last: bool) -> None:
        primer, self._primer = self._primer, (self._primer + block)[-WINDOW:]
        self._jobs.append(self._pool.submit(_deflate, block, self._level, primer, last))

    def _collect(self, final: bool) -> bytes:
        """What the blocks done so far give, in order (all of them when ``final``; waiting for
        the oldest while too many are in flight)."""
        out = [self._head] if self._head else []
        self._head = b""
        while self._jobs and (final or self._jobs[0].done() or len(self._jobs) > self._in_flight):
            out.append(self._jobs.popleft().result())
        return b"".join(out)


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class LayerDigests:
    diff_id: Digest  # sha256 of the uncompressed tar
    uncompressed_size: int
    digest: Digest | None  # sha256 of the compressed bytes (None when hash_output=False)
    size: int  # compressed bytes
    compression: Compression

    @property
    def media_type(self) -> str:
        return oci_layer_type(self.compression)


class LayerCompressor:
    """Feed the uncompressed tar to ``update``; write what it (and ``finish``) returns."""

    def __init__(
        self, compression: Compression = Compression.GZIP, level: int | None = None, hash_output: bool = True
    ) -> None:
        if compression is Compression.NONE:
            raise ValueError("LayerCompressor needs gzip or zstd")
        self.compression = compression
        level = DEFAULT_LEVELS[compression] if level is None else level
        self._engine: _Compressor
        if compression is Compression.GZIP:
            self._engine = ParallelGzip(level)
        else:
            self._engine = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
        self._in = hashlib.sha256()
        self._out = hashlib.sha256() if hash_output else None
        self._in_size = 0
        self._out_size = 0
        self._result: LayerDigests | None = None

    def update(self, data: bytes) -> bytes:
        if self._result is not None:
            raise RuntimeError("the compressor is finished")
        self._in.update(data)
        self._in_size += len(data)
        return self._emit(self._engine.compress(data))

    def finish(self) -> bytes:
        """Flush the compressor; the digests are then in ``result``."""
        tail = self._emit(self._engine.flush())
        self._result = LayerDigests(
            diff_id=Digest(f"sha256:{self._in.hexdigest()}"),
            uncompressed_size=self._in_size,
            digest=Digest(f"sha256:{self._out.hexdigest()}") if self._out is not None else None,
            size=self._out_size,
            compression=self.compression,
        )
        return tail

    @property
    def result(self) -> LayerDigests:
        if self._result is None:
            raise RuntimeError("call finish() first")
        return self._result

    def _emit(self, out: bytes) -> bytes:
        if out:
            self._out_size += len(out)
            if self._out is not None:
                self._out.update(out)
        return out


class UncompressedHasher:
    """The sha256 and size of what a gzip or zstd stream decompresses to (its diff_id)."""

    def __init__(self, compression: Compression, max_size: int) -> None:
        self._decoder = decompressor(compression)
        self._hash = hashlib.sha256()
        self._max_size = max_size
        self.size = 0

    def update(self, data: bytes) -> None:
        for piece in self._decoder.feed(data):
            self.size += len(piece)
            if self.size > self._max_size:
                raise UnsafeArchive(f"a layer decompresses to more than {self._max_size} bytes")
            self._hash.update(piece)

    def finish(self) -> Digest:
        self._decoder.close()
        return Digest(f"sha256:{self._hash.hexdigest()}")
