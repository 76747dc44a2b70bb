from __future__ import annotations

import gzip
import hashlib
import os

import pytest
import zstandard

from dockyard.archive import media
from dockyard.archive.compress import LayerCompressor, UncompressedHasher
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
