"""The feed between a producer on the test's event loop and a consumer on a second loop in
its own thread (as the server's request handlers and an import are)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import random
import threading
from collections.abc import AsyncGenerator, Awaitable
from typing import TypeVar, cast

import pytest

from dockyard.transfer.imports.feed import Feed, FeedStopped, ImportCancelled

T = TypeVar("T")

WAIT = 10.0  # seconds: only so that a broken feed fails the test instead of hanging it
END = object()  # the consumer's iteration ended


class Consumer:
    """Iterates ``feed.chunks()`` on an event loop of its own in a thread.

    Gated, it takes one step (one ``anext``) per ``allow()``, so the test knows exactly
    what it has taken and whether it is asking for more. Every chunk it takes, the end of
    the iteration (``END``) or the exception that ended it goes to ``events``.
    ``fail_after``: raise after taking that many chunks (an import that refuses the archive).
    """

    def __init__(self, feed: Feed, gated: bool = False, fail_after: int | None = None) -> None:
        self.feed = feed
        self.gated = gated
        self.fail_after = fail_after
        self.events: queue.Queue[object] = queue.Queue()
        self._permits: queue.Queue[None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def allow(self, steps: int = 1) -> None:
        for _ in range(steps):
            self._permits.put(None)

    async def next_event(self) -> object:
        return await asyncio.to_thread(self.events.get, timeout=WAIT)

    async def join(self) -> None:
        await asyncio.to_thread(self._thread.join, WAIT)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:
            self.events.put(exc)
        else:
            self.events.put(END)

    async def _consume(self) -> None:
        taken = 0
        # aclosing: the generator's cleanup (which ends the feed) runs as the consumer leaves
        chunks = cast(AsyncGenerator[bytes, None], self.feed.chunks())  # it is one: it can be closed
        async with contextlib.aclosing(chunks):
            while True:
                if self.gated:
                    self._permits.get(timeout=WAIT)  # blocks this thread's loop: nothing else runs on it
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                self.events.put(chunk)
                taken += 1
                if self.fail_after is not None and taken >= self.fail_after:
                    raise ValueError("the import refused the archive")


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


async def still_pending(feed: Feed, task: asyncio.Future[None]) -> bool:
    """Whether ``task`` (a ``put`` or ``drained`` of ``feed``) still waits once it has looked at
    the feed after the consumer's last step: it then either returned, or parked itself until the
    consumer wakes it (which is seen in the feed). The consumer's steps are all taken by now: a
    gated one takes none until allowed, and one whose event the test received has done
    everything that step does to the feed (it wakes the producer before it hands a chunk over)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not task.done() and feed._producer is None:  # woken, or not run yet: it has to look
        assert loop.time() < deadline, "the waiter never looked at the feed"
        await asyncio.sleep(0)
    return not task.done()


async def test_every_byte_arrives_in_order() -> None:
    feed = Feed(capacity=10_000)  # small, so the producer waits for the consumer again and again
    consumer = Consumer(feed)
    rng = random.Random(7)
    sent = []
    for _ in range(500):
        chunk = os.urandom(rng.choice([1, 100, 4_999, 10_000, 25_000]))  # some above the capacity
        sent.append(chunk)
        await within(feed.put(chunk))
    await within(feed.put(b""))  # ignored
    feed.close()

    received = []
    while (event := await consumer.next_event()) is not END:
        assert isinstance(event, bytes), event
        received.append(event)
    assert b"".join(received) == b"".join(sent)
    assert received == sent  # chunks are handed over as they were put, not merged or split
    await consumer.join()


async def test_put_waits_while_more_than_the_capacity_is_queued() -> None:
    feed = Feed(capacity=10)
    consumer = Consumer(feed, gated=True)  # paused: takes nothing until allowed

    await within(feed.put(b"a" * 6))  # 6 queued: within the capacity, so put returns
    second = asyncio.ensure_future(feed.put(b"b" * 6))  # 12 queued: above it
    assert await still_pending(feed, second)

    consumer.allow()
    assert await consumer.next_event() == b"a" * 6
    await within(second)  # the consumer took 6 bytes: 6 queued, put goes on

    third = asyncio.ensure_future(feed.put(b"c" * 20))  # a chunk larger than the capacity
    assert await still_pending(feed, third)
    consumer.allow()
    assert await consumer.next_event() == b"b" * 6
    assert await still_pending(feed, third)  # 20 bytes still queued
    consumer.allow()
    assert await consumer.next_event() == b"c" * 20
    await within(third)

    feed.close()
    consumer.allow()
    assert await consumer.next_event() is END
    await consumer.join()


async def test_drained_waits_until_the_consumer_took_everything_and_asks_again() -> None:
    feed = Feed()
    consumer = Consumer(feed, gated=True)
    for chunk in (b"one", b"two", b"three"):
        await within(feed.put(chunk))

    drained = asyncio.ensure_future(feed.drained())
    assert await still_pending(feed, drained)
    consumer.allow(2)
    assert [await consumer.next_event(), await consumer.next_event()] == [b"one", b"two"]
    assert await still_pending(feed, drained)  # "three" is still queued

    consumer.allow()
    assert await consumer.next_event() == b"three"
    # Everything was taken, but the consumer may still be working on "three": it has not
    # asked for more yet, so an error caused by "three" could still come.
    assert await still_pending(feed, drained)

    consumer.allow()  # it asks for the next chunk: everything put so far was worked on
    await within(drained)
    await within(feed.drained())  # and again, with nothing new put

    await within(feed.put(b"four"))
    again = asyncio.ensure_future(feed.drained())
    assert await consumer.next_event() == b"four"
    assert await still_pending(feed, again)  # the consumer was woken with "four" and has not asked since
    consumer.allow()
    await within(again)

    feed.close()
    assert await consumer.next_event() is END
    await consumer.join()


async def test_a_consumer_that_fails_releases_a_waiting_put() -> None:
    feed = Feed(capacity=4)
    consumer = Consumer(feed, gated=True, fail_after=1)
    await within(feed.put(b"abc"))
    blocked = asyncio.ensure_future(feed.put(b"12345678"))  # 11 queued: waits for the consumer
    assert await still_pending(feed, blocked)

    consumer.allow()
    assert await consumer.next_event() == b"abc"  # 8 still queued: not enough to release the put
    assert isinstance(await consumer.next_event(), ValueError)

    # The put does not wait for a consumer that is gone; later ones are refused.
    with contextlib.suppress(FeedStopped):
        await within(blocked)
    assert feed.ended
    with pytest.raises(FeedStopped):
        await within(feed.put(b"more"))
    await within(feed.drained())
    await consumer.join()


async def test_a_consumer_that_fails_releases_drained() -> None:
    feed = Feed()
    consumer = Consumer(feed, gated=True, fail_after=1)
    await within(feed.put(b"bad"))
    await within(feed.put(b"never read"))
    drained = asyncio.ensure_future(feed.drained())
    assert await still_pending(feed, drained)

    consumer.allow()
    assert await consumer.next_event() == b"bad"
    assert isinstance(await consumer.next_event(), ValueError)
    await within(drained)  # though a chunk is still queued: nobody will take it
    with pytest.raises(FeedStopped):
        await within(feed.put(b"more"))
    await consumer.join()


async def test_end_without_the_generator_also_releases_the_producer() -> None:
    # The import's thread ends the feed itself when its loop is gone, whatever became of chunks().
    feed = Feed(capacity=4)
    await within(feed.put(b"abcd"))
    blocked = asyncio.ensure_future(feed.put(b"efgh"))
    assert await still_pending(feed, blocked)
    threading.Thread(target=feed.end).start()
    with contextlib.suppress(FeedStopped):
        await within(blocked)
    with pytest.raises(FeedStopped):
        await within(feed.put(b"more"))


async def test_cancel_wakes_a_waiting_consumer_with_import_cancelled() -> None:
    feed = Feed()
    consumer = Consumer(feed)
    await within(feed.put(b"first"))
    assert await consumer.next_event() == b"first"
    await within(feed.drained())  # the consumer now waits for a chunk

    feed.cancel()
    failure = await consumer.next_event()
    assert isinstance(failure, ImportCancelled)
    with pytest.raises(FeedStopped):
        await within(feed.put(b"late"))
    await consumer.join()


async def test_cancel_drops_queued_chunks() -> None:
    feed = Feed(capacity=8)
    consumer = Consumer(feed, gated=True)
    await within(feed.put(b"12345678"))
    blocked = asyncio.ensure_future(feed.put(b"abcdefgh"))
    assert await still_pending(feed, blocked)

    feed.cancel()
    consumer.allow()
    failure = await consumer.next_event()  # not the queued chunks: the import stops
    assert isinstance(failure, ImportCancelled)
    with contextlib.suppress(FeedStopped):
        await within(blocked)
    await consumer.join()


async def test_close_ends_the_iteration_after_the_queued_chunks() -> None:
    feed = Feed()
    consumer = Consumer(feed, gated=True)
    await within(feed.put(b"x"))
    await within(feed.put(b"y"))
    feed.close()
    consumer.allow(3)
    assert [await consumer.next_event() for _ in range(3)] == [b"x", b"y", END]
    await within(feed.drained())
    await consumer.join()


async def test_close_wakes_a_waiting_consumer() -> None:
    feed = Feed()
    consumer = Consumer(feed)
    await within(feed.put(b"only"))
    assert await consumer.next_event() == b"only"
    await within(feed.drained())  # it waits for the next chunk

    feed.close()
    assert await consumer.next_event() is END
    assert feed.ended
    await consumer.join()
