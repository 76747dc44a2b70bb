"""Uncompressed layer sizes: each layer is decompressed once, as a stream, and counted.

Decompression runs in a worker thread that pulls the compressed bytes from the event loop
on demand, and output is read in bounded pieces, so a decompression bomb costs no memory.
It is bounded in output bytes and in time per layer too (:class:`MeasureLimits`): an 8 MiB
zstd layer can expand to 256 GiB, which took 17 s of CPU to count, and the figure told
nothing about the image. Past a bound the layer is :class:`NotMeasured`, with the reason.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import zstandard

PIECE = 16 * 1024 * 1024
READ = 1024 * 1024


@dataclass(frozen=True)
class MeasureLimits:
    max_bytes: int  # uncompressed bytes counted per layer
    max_seconds: float  # time spent on one layer (reading and decompressing)


class NotMeasured(Exception):
    """The layer's uncompressed size is unknown; ``str()`` says why, as a predicate of "the
    layer" (e.g. "expands past ... bytes")."""


class _Budget:
    def __init__(self, limits: MeasureLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.total = 0
        self.abandoned = False  # whoever awaited the count went away (shutdown): stop the thread

    def remaining(self) -> float:
        if self.abandoned:
            raise NotMeasured("was not measured: the inspection stopped")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise NotMeasured(
                f"takes longer than {self.limits.max_seconds:g} s to decompress, the limit per layer "
                "(DOCKYARD_INSPECT_LAYER_MAX_SECONDS)"
            )
        return left

    def add(self, count: int) -> None:
        self.total += count
        if self.total > self.limits.max_bytes:
            raise NotMeasured(
                f"expands past {self.limits.max_bytes:,} bytes, the limit per layer "
                "(DOCKYARD_INSPECT_LAYER_MAX_BYTES)"
            )
        self.remaining()


class _Pull:
    """A blocking file-like ``read`` over an async iterator of chunks (for a worker thread)."""

    def __init__(
        self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop, budget: _Budget
    ) -> None:
        self._chunks = chunks
        self._loop = loop
        self._budget = budget
        self._buffer = b""
        self._done = False

    def _next(self) -> bytes | None:
        async def step() -> bytes | None:
            try:
                return await anext(self._chunks)
            except StopAsyncIteration:
                return None

        future = asyncio.run_coroutine_threadsafe(step(), self._loop)
        try:
            return future.result(timeout=self._budget.remaining())
        except TimeoutError:
            future.cancel()
            self._budget.remaining()  # raises NotMeasured: the time is up
            raise

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = self._next()
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _count(source: _Pull, media_type: str, budget: _Budget) -> int:
    if "zstd" in media_type:
        with zstandard.ZstdDecompressor().stream_reader(source) as reader:  # type: ignore[arg-type]  # has read()
            while piece := reader.read(PIECE):
                budget.add(len(piece))
        return budget.total
    if "gzip" in media_type:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while chunk := source.read(READ):
            budget.add(len(inflater.decompress(chunk, PIECE)))
            while inflater.unconsumed_tail:
                budget.add(len(inflater.decompress(inflater.unconsumed_tail, PIECE)))
        return budget.total
    while chunk := source.read(READ):  # an uncompressed tar, or unknown: counted as is
        budget.add(len(chunk))
    return budget.total


async def uncompressed_size(chunks: AsyncIterator[bytes], media_type: str, limits: MeasureLimits) -> int:
    """The layer's size decompressed; :class:`NotMeasured` past ``limits``."""
    budget = _Budget(limits)
    pull = _Pull(chunks, asyncio.get_running_loop(), budget)
    try:
        return await asyncio.to_thread(_count, pull, media_type, budget)
    except asyncio.CancelledError:
        budget.abandoned = True  # a thread cannot be cancelled; it stops at its next piece
        raise
    finally:
        # Stopped early (a bound, an error): close the blob's reader now, unless a read is still
        # under way (the generator is then closed when it is collected).
        if inspect.isasyncgen(chunks) and not chunks.ag_running:
            await chunks.aclose()
