from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import pytest
import zstandard

from dockyard.archive import media
from dockyard.archive.compress import LayerCompressor, ParallelGzip, UncompressedHasher
from dockyard.archive.decompress import Compression
from dockyard.archive.errors import UnsafeArchive
from tests.unit.archive.factories import gz, layer_tar, zst

DATA = layer_tar(
    {"bin/tool": os.urandom(200_000), "etc/zeros": bytes(500_000), "etc/text": b"hello\n" * 5000}
)


def decompress(kind: Compression, data: bytes) -> bytes:
    if kind is Compression.GZIP:
        return gzip.decompress(data)
    return zstandard.ZstdDecompressor().stream_reader(data).read()


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD])
def test_compressor_hashes_both_sides_in_one_pass(kind: Compression) -> None:
    compressor = LayerCompressor(kind)
    out = b"".join(compressor.update(DATA[i : i + 65536]) for i in range(0, len(DATA), 65536))
    out += compressor.finish()
    result = compressor.result
    assert decompress(kind, out) == DATA
    assert result.diff_id == f"sha256:{hashlib.sha256(DATA).hexdigest()}"
    assert result.uncompressed_size == len(DATA)
    assert result.digest == f"sha256:{hashlib.sha256(out).hexdigest()}"
    assert result.size == len(out)
    assert result.media_type == (media.OCI_LAYER_GZIP if kind is Compression.GZIP else media.OCI_LAYER_ZSTD)


def test_gzip_output_is_deterministic() -> None:
    def run() -> bytes:
        c = LayerCompressor(Compression.GZIP)
        return c.update(DATA) + c.finish()

    assert run() == run()


def test_output_hash_can_be_left_to_the_sink() -> None:
    compressor = LayerCompressor(Compression.GZIP, level=1, hash_output=False)
    out = compressor.update(DATA) + compressor.finish()
    assert compressor.result.digest is None
    assert compressor.result.size == len(out)


def test_compressor_refuses_none_and_use_after_finish() -> None:
    with pytest.raises(ValueError, match="gzip or zstd"):
        LayerCompressor(Compression.NONE)
    compressor = LayerCompressor()
    compressor.finish()
    with pytest.raises(RuntimeError):
        compressor.update(b"x")


@pytest.mark.parametrize(("kind", "compress"), [(Compression.GZIP, gz), (Compression.ZSTD, zst)])
def test_uncompressed_hasher_gives_the_diff_id(kind: Compression, compress: object) -> None:
    assert callable(compress)
    data = compress(DATA)
    hasher = UncompressedHasher(kind, max_size=1 << 30)
    for i in range(0, len(data), 1000):
        hasher.update(data[i : i + 1000])
    assert hasher.finish() == f"sha256:{hashlib.sha256(DATA).hexdigest()}"
    assert hasher.size == len(DATA)


def test_uncompressed_hasher_stops_at_its_limit() -> None:
    hasher = UncompressedHasher(Compression.GZIP, max_size=100_000)
    with pytest.raises(UnsafeArchive, match="more than 100000"):
        hasher.update(gz(DATA))


@pytest.mark.parametrize("level", [0, 1, 6, 9])
@pytest.mark.parametrize("block", [1000, 32 * 1024, 1 << 20])
def test_parallel_gzip_is_one_gzip_stream_whatever_the_blocks(level: int, block: int) -> None:
    """Blocks compressed apart (each primed with the window before it) join into one member
    that any reader reads back; the bytes depend on level and block size, not on how the
    input was fed."""
    whole = ParallelGzip(level, block)
    once = whole.compress(DATA) + whole.flush()
    pieces = ParallelGzip(level, block)
    fed = b"".join(pieces.compress(DATA[i : i + 777]) for i in range(0, len(DATA), 777)) + pieces.flush()
    assert fed == once
    assert gzip.decompress(once) == DATA
    assert zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(once) == DATA  # one member
    assert once[:2] == b"\x1f\x8b"


def test_parallel_gzip_compresses_as_well_as_one_stream() -> None:
    single = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    reference = single.compress(DATA) + single.flush()
    parallel = ParallelGzip(6, 64 * 1024)
    ours = parallel.compress(DATA) + parallel.flush()
    assert len(ours) <= len(reference) * 1.01


def test_parallel_gzip_of_nothing_and_bad_levels() -> None:
    empty = ParallelGzip(6)
    assert gzip.decompress(empty.flush()) == b""
    with pytest.raises(ValueError, match="levels are 0 to 9"):
        ParallelGzip(10)
