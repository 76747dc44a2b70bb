"""Double buffering for the import's blob writers: bytes are copied into pooled, page-aligned
``BUFFER``-sized buffers on the loop, and a full buffer is handed to a task (hashing, writing)
while the next one fills.

This is the path of a registry upload's bytes (``registry.uploads._pump``): a pool per sink,
two buffers per writer; hashing runs in a thread (hashlib releases the GIL) for all but small
pieces. Work in a thread cannot be stopped, so a buffer goes back to the pool only once the
work on it has ended, even when the writer is cancelled (:func:`wait_out`).
"""

from __future__ import annotations

import asyncio
import mmap
from collections.abc import Awaitable, Callable
from typing import Any

from dockyard.oci.digest import Hasher
from dockyard.registry.uploads import BUFFER, BufferPool

_THREADED = 1 << 16  # hash smaller pieces inline: a thread hand-off costs more than it saves


async def hash_view(hasher: Hasher, view: memoryview) -> None:
    if len(view) >= _THREADED:
        await asyncio.to_thread(hasher.update, view)
    else:
        hasher.update(view)


async def wait_out(task: asyncio.Future[Any] | None) -> None:
    """Wait until ``task`` is done, without cancelling it and without raising what it raised:
    it uses a buffer or a file in a thread that cannot be stopped, so it must end before either
    is reused. A cancellation of the caller is raised once the task is done."""
    if task is None:
        return
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled():
        task.exception()  # retrieved: whoever awaited it has reported it, or will
    if cancelled:
        raise asyncio.CancelledError


class Relay:
    """One writer's buffers. One task at a time, so buffers are worked on in order; a caller
    that is cancelled leaves the task running, and ``release`` waits for it before any buffer
    goes back to the pool."""

    def __init__(self, pool: BufferPool) -> None:
        self.pool = pool
        self.buffer: mmap.mmap | None = None
        self.filled = 0
        self._busy: mmap.mmap | None = None
        self._task: asyncio.Task[None] | None = None

    def fill(self, data: memoryview) -> memoryview:
        """Copy what fits of ``data`` into the buffer; returns the rest."""
        if self.buffer is None:
            self.buffer, self.filled = self.pool.take(), 0
        step = min(len(data), BUFFER - self.filled)
        self.buffer[self.filled : self.filled + step] = data[:step]
        self.filled += step
        return data[step:]

    @property
    def full(self) -> bool:
        return self.filled == BUFFER

    async def hand_over(self, work: Callable[[memoryview], Awaitable[None]]) -> None:
        """Start ``work`` on the filled part of the buffer once the previous work is done;
        the next ``fill`` takes a fresh buffer."""
        await self.settle()
        buffer, size = self.buffer, self.filled
        self.buffer, self.filled = None, 0
        if buffer is None:
            return
        if not size:
            self.pool.give(buffer)
            return
        self._busy = buffer
        self._task = asyncio.ensure_future(_work_on(buffer, size, work))

    async def settle(self) -> None:
        """Wait for the work in flight; raises what it raised."""
        if self._task is None:
            return
        await asyncio.shield(self._task)
        self._task = None
        busy, self._busy = self._busy, None
        if busy is not None:
            self.pool.give(busy)

    async def release(self) -> None:
        """Wait for the work in flight (not raising its failure) and return every buffer."""
        task, self._task = self._task, None
        try:
            await wait_out(task)
        finally:
            for buffer in (self._busy, self.buffer):
                if buffer is not None:
                    self.pool.give(buffer)
            self._busy, self.buffer, self.filled = None, None, 0


async def _work_on(buffer: mmap.mmap, size: int, work: Callable[[memoryview], Awaitable[None]]) -> None:
    with memoryview(buffer)[:size] as view:
        await work(view)
