"""Uncompressed layer sizes: each layer is decompressed once, as a stream, and counted.

Decompression runs in a worker thread that pulls the compressed bytes from the event loop
on demand, and output is read in bounded pieces, so a decompression bomb costs time, not
memory.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import zstandard

PIECE = 16 * 1024 * 1024


class _Pull:
    """A blocking file-like ``read`` over an async iterator of chunks (for a worker thread)."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._buffer = b""
        self._done = False

    def _next(self) -> bytes | None:
        async def step() -> bytes | None:
            try:
                return await anext(self._chunks)
            except StopAsyncIteration:
                return None

        return asyncio.run_coroutine_threadsafe(step(), self._loop).result()

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


def _count(source: _Pull, media_type: str) -> int:
    total = 0
    if "zstd" in media_type:
        with zstandard.ZstdDecompressor().stream_reader(source) as reader:  # type: ignore[arg-type]  # has read()
            while piece := reader.read(PIECE):
                total += len(piece)
        return total
    if "gzip" in media_type:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while chunk := source.read(1024 * 1024):
            data = inflater.decompress(chunk, PIECE)
            total += len(data)
            while inflater.unconsumed_tail:
                total += len(inflater.decompress(inflater.unconsumed_tail, PIECE))
        return total
    while chunk := source.read(1024 * 1024):  # an uncompressed tar, or unknown: counted as is
        total += len(chunk)
    return total


async def uncompressed_size(chunks: AsyncIterator[bytes], media_type: str) -> int:
    return await asyncio.to_thread(_count, _Pull(chunks, asyncio.get_running_loop()), media_type)
