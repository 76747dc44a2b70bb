"""Compress a layer while hashing both sides, in one pass over the bytes.

A docker-save layer is an uncompressed tar; a registry stores it compressed. The diff_id
(sha256 of the tar, named in the image config) and the blob digest (sha256 of the
compressed bytes, named in the manifest) are both needed, and the bytes pass once:
``LayerCompressor.update`` hashes its input, compresses it and (unless the caller's sink
hashes what it stores anyway: ``hash_output=False``) hashes the output.

``UncompressedHasher`` is the other direction: the diff_id of an already compressed layer,
by decompressing it in bounded pieces that are hashed and dropped.

gzip output is deterministic (zlib's header has mtime 0): the same tar at the same level
gives the same blob digest, so re-importing an archive deduplicates. Default levels match
what docker and containerd use: gzip 6 (Go's DefaultCompression), zstd 3.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Protocol

import zstandard

from dockyard.archive.decompress import Compression, decompressor
from dockyard.archive.errors import UnsafeArchive
from dockyard.archive.media import oci_layer_type
from dockyard.oci.digest import Digest

DEFAULT_LEVELS = {Compression.GZIP: 6, Compression.ZSTD: 3}


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
            self._engine = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
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
