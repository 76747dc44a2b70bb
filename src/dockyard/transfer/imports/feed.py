"""Bytes handed from request handlers to an import that runs on its own loop in its own thread.

The producer (the server's event loop, one request at a time) ``put``s request-body chunks;
the consumer (the import's loop) iterates ``chunks()``. Neither side blocks its thread: each
waits on a future of its own loop, which the other side resolves with
``call_soon_threadsafe``. The queue is bounded (``capacity`` bytes), so a fast client waits
for a slow import instead of filling memory, and the two run at once: the next chunk is
received while the previous one is hashed and written.

``drained()`` waits until the consumer has taken every chunk and asks for more (or has
ended): then everything put so far has been worked on, and an error it caused is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

CAPACITY = 32 << 20


class FeedStopped(Exception):
    """The consumer is gone: the import ended (or failed) and takes no more bytes."""


class ImportCancelled(Exception):
    """The import was asked to stop (shutdown, or its session was taken over)."""


Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]


def _wake(waiter: Waiter | None) -> None:
    if waiter is None:
        return
    loop, future = waiter

    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    if loop.is_closed():
        return
    with contextlib.suppress(RuntimeError):  # the loop closed in between: nobody waits any more
        loop.call_soon_threadsafe(resolve)


class Feed:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._closed = False  # the producer has put everything
        self._cancelled = False
        self._ended = False  # the consumer is gone
        self._asking = False  # the consumer waits for a chunk
        self._consumer: Waiter | None = None
        self._producer: Waiter | None = None

    # --- producer side ------------------------------------------------------------

    async def put(self, chunk: bytes) -> None:
        """Queue ``chunk``; waits while the queue is full. Raises ``FeedStopped`` when the
        consumer has ended."""
        self.enqueue(chunk)
        await self.room()

    def enqueue(self, chunk: bytes) -> None:
        """Queue ``chunk`` (the consumer will take it); raises ``FeedStopped`` when it has ended."""
        if not chunk:
            return
        with self._lock:
            if self._ended:
                raise FeedStopped
            self._chunks.append(chunk)
            self._queued += len(chunk)
            consumer, self._consumer = self._consumer, None
        _wake(consumer)

    async def room(self) -> None:
        """Wait while more than ``capacity`` bytes are queued (or until the consumer ends)."""
        await self._wait_producer(lambda: self._queued <= self.capacity)

    async def drained(self) -> None:
        """Wait until the consumer has taken everything and asks for more, or has ended."""
        await self._wait_producer(lambda: not self._chunks and self._asking)

    def close(self) -> None:
        """No more chunks: the consumer sees the end of the stream."""
        with self._lock:
            self._closed = True
            consumer, self._consumer = self._consumer, None
        _wake(consumer)

    def cancel(self) -> None:
        """The consumer's next ``chunks()`` step raises ``ImportCancelled``."""
        with self._lock:
            self._cancelled = True
            self._chunks.clear()
            self._queued = 0
            consumer, self._consumer = self._consumer, None
        _wake(consumer)

    async def _wait_producer(self, ready: Callable[[], bool]) -> None:
        while True:
            with self._lock:
                if self._ended or ready():
                    return
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._producer = (asyncio.get_running_loop(), future)
            await future

    # --- consumer side ------------------------------------------------------------

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                with self._lock:
                    if self._cancelled:
                        raise ImportCancelled("the import was stopped")
                    if self._chunks:
                        chunk = self._chunks.popleft()
                        self._queued -= len(chunk)
                        self._asking = False
                        producer = self._producer if self._queued <= self.capacity else None
                        if producer is not None:
                            self._producer = None
                        future = None
                    elif self._closed:
                        return
                    else:
                        chunk = b""
                        self._asking = True
                        loop = asyncio.get_running_loop()
                        future = loop.create_future()
                        self._consumer = (loop, future)
                        producer, self._producer = self._producer, None
                _wake(producer)
                if future is not None:
                    await future
                    continue
                yield chunk
        finally:
            self.end()

    def end(self) -> None:
        """The consumer is done (finished, failed or stopped): producers stop waiting."""
        with self._lock:
            self._ended = True
            self._asking = False
            producer, self._producer = self._producer, None
        _wake(producer)

    @property
    def ended(self) -> bool:
        return self._ended
