"""Measuring uncompressed layer sizes: exact below the bounds, refused with the reason past them."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard

from dockyard.catalog.measure import MeasureLimits, NotMeasured, uncompressed_size
from tests.support.catalog import ZSTD_LAYER, zstd_zeros

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"
ROOMY = MeasureLimits(max_bytes=1 << 40, max_seconds=600.0)


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    ("media_type", "compress"),
    [
        (GZIP_LAYER, lambda data: gzip.compress(data, mtime=0)),
        (ZSTD_LAYER, lambda data: zstandard.ZstdCompressor().compress(data)),
        (TAR_LAYER, lambda data: data),
    ],
)
async def test_a_layer_is_measured_exactly(media_type: str, compress: Callable[[bytes], bytes]) -> None:
    data = bytes(range(256)) * 40_000 + b"tail"
    assert await uncompressed_size(chunks(compress(data)), media_type, ROOMY) == len(data)


async def test_a_layer_expanding_past_the_byte_bound_is_not_measured() -> None:
    bomb = zstd_zeros(1024**3)

    with pytest.raises(NotMeasured) as refused:
        await uncompressed_size(chunks(bomb), ZSTD_LAYER, MeasureLimits(64 * 1024 * 1024, 600.0))

    assert str(refused.value) == (
        "expands past 67,108,864 bytes, the limit per layer (DOCKYARD_INSPECT_LAYER_MAX_BYTES)"
    )


async def test_exactly_the_byte_bound_is_measured() -> None:
    size = 8 * 1024 * 1024
    assert await uncompressed_size(chunks(zstd_zeros(size)), ZSTD_LAYER, MeasureLimits(size, 600.0)) == size


async def test_a_gzip_bomb_stops_at_the_byte_bound() -> None:
    bomb = gzip.compress(bytes(256 * 1024 * 1024), compresslevel=9, mtime=0)  # ~250 KiB

    with pytest.raises(NotMeasured, match="expands past 16,777,216 bytes"):
        await uncompressed_size(chunks(bomb), GZIP_LAYER, MeasureLimits(16 * 1024 * 1024, 600.0))


async def test_a_layer_taking_too_long_to_decompress_is_not_measured() -> None:
    bomb = zstd_zeros(64 * 1024**3)  # 2 MiB; counting it all takes tens of seconds

    with pytest.raises(NotMeasured) as refused:
        await uncompressed_size(chunks(bomb), ZSTD_LAYER, MeasureLimits(1 << 40, 0.2))

    assert str(refused.value) == (
        "takes longer than 0.2 s to decompress, the limit per layer (DOCKYARD_INSPECT_LAYER_MAX_SECONDS)"
    )


async def test_a_stalled_read_counts_against_the_time_bound() -> None:
    never = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield gzip.compress(b"the first chunk")[:10]
        await never.wait()
        yield b""

    with pytest.raises(NotMeasured) as refused:
        await uncompressed_size(stalls(), GZIP_LAYER, MeasureLimits(1 << 40, 0.3))

    assert str(refused.value).startswith("takes longer than 0.3 s to decompress")


async def test_a_cancelled_measurement_stops_its_thread() -> None:
    """A server stopping mid-inspection must not wait for a decompression to run its course."""
    started = asyncio.Event()
    bomb = zstd_zeros(64 * 1024**3)  # tens of seconds of work

    async def watched() -> AsyncIterator[bytes]:
        started.set()
        yield bomb  # one read: the thread would decompress it all before asking for more

    one_thread = ThreadPoolExecutor(max_workers=1)
    asyncio.get_running_loop().set_default_executor(one_thread)
    try:
        task = asyncio.create_task(uncompressed_size(watched(), ZSTD_LAYER, ROOMY))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        # The only thread is free again once the abandoned count has stopped.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 10.0) == "free"
    finally:
        one_thread.shutdown(wait=False, cancel_futures=True)
