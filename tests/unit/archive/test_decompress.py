from __future__ import annotations

import os

import pytest
import zstandard

from dockyard.archive.decompress import (
    Compression,
    GzipDecompressor,
    ZstdDecompressor,
    sniff,
)
from dockyard.archive.errors import InvalidArchive
from tests.unit.archive.factories import gz, zst

PAYLOAD = os.urandom(300_000) + bytes(3_000_000) + b"tail"


def run(decoder: GzipDecompressor | ZstdDecompressor, data: bytes, step: int) -> list[bytes]:
    pieces: list[bytes] = []
    for start in range(0, len(data), step):
        pieces += decoder.feed(data[start : start + step])
    decoder.close()
    return pieces


@pytest.mark.parametrize("step", [1, 1000, 1 << 20])
def test_gzip_roundtrip_with_bounded_pieces(step: int) -> None:
    if step == 1:
        data = gz(PAYLOAD[:20_000])
        assert b"".join(run(GzipDecompressor(4096), data, step)) == PAYLOAD[:20_000]
        return
    pieces = run(GzipDecompressor(65536), gz(PAYLOAD), step)
    assert b"".join(pieces) == PAYLOAD
    assert max(map(len, pieces)) <= 65536


@pytest.mark.parametrize("step", [1, 1000, 1 << 20])
def test_zstd_roundtrip_with_bounded_pieces(step: int) -> None:
    payload = PAYLOAD if step > 1 else PAYLOAD[:20_000]
    pieces = run(ZstdDecompressor(256 * 1024), zst(payload), step)
    assert b"".join(pieces) == payload
    assert max(map(len, pieces)) <= 256 * 1024


def test_zstd_bomb_is_decoded_in_bounded_pieces() -> None:
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(256 << 20))
    assert len(bomb) < 64 << 10
    decoder = ZstdDecompressor(1 << 20)
    biggest = 0
    for piece in decoder.feed(bomb):
        biggest = max(biggest, len(piece))
        if biggest:
            break  # the first piece is bounded; the reader would count and stop here
    assert 0 < biggest <= 1 << 20


def test_zstd_multiple_frames_checksums_and_skippable_frames() -> None:
    skippable = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello"
    checked = zstandard.ZstdCompressor(write_checksum=True).compress(b"one")
    data = checked + skippable + zst(b"two")
    assert b"".join(run(ZstdDecompressor(), data, 3)) == b"onetwo"


def test_gzip_multiple_members_and_zero_padding() -> None:
    assert b"".join(run(GzipDecompressor(), gz(b"one") + gz(b"two") + bytes(512), 5)) == b"onetwo"


@pytest.mark.parametrize(
    ("decoder", "data", "message"),
    [
        pytest.param(GzipDecompressor(), gz(b"x" * 1000)[:-4], "truncated", id="gzip-truncated"),
        pytest.param(GzipDecompressor(), b"", "truncated", id="gzip-empty"),
        pytest.param(
            GzipDecompressor(), gz(b"x") + bytes(4) + b"x", "after the end", id="gzip-junk-after-zeros"
        ),
        pytest.param(GzipDecompressor(), b"\x1f\x8b" + b"\xff" * 40, "corrupt gzip", id="gzip-corrupt"),
        pytest.param(ZstdDecompressor(), zst(b"x" * 1000)[:-2], "truncated", id="zstd-truncated"),
        pytest.param(ZstdDecompressor(), zst(b"x") + b"junk", "after the end", id="zstd-junk"),
        pytest.param(
            ZstdDecompressor(), b"\x28\xb5\x2f\xfd\x08" + bytes(10), "reserved", id="zstd-reserved-bit"
        ),
    ],
)
def test_broken_streams(decoder: GzipDecompressor | ZstdDecompressor, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArchive, match=message):
        run(decoder, data, 7)


def test_zstd_huge_window_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=30, enable_ldm=True)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()  # declares its 1 GiB window
    data = stream.compress(b"x" * 1000) + stream.flush()
    with pytest.raises(InvalidArchive, match="too much memory"):
        run(ZstdDecompressor(), data, 1 << 20)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"\x1f\x8b\x08\x00", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd\x00", Compression.ZSTD),
        (b"manifest.json\0", Compression.NONE),
        (b"BZh-not-bzip2", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_sniff(prefix: bytes, expected: Compression) -> None:
    assert sniff(prefix) is expected


@pytest.mark.parametrize("prefix", [b"\xfd7zXZ\x00\x00", b"BZh91AY&SY"])
def test_sniff_refuses_other_compressions(prefix: bytes) -> None:
    with pytest.raises(InvalidArchive, match="not supported"):
        sniff(prefix)
