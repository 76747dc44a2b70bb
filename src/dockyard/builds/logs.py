"""Build logs: appended to ``builds/logs/<run id>.log`` in storage as lines arrive, so they
can be re-read at any time, and announced in memory so that followers in this process see
each line at once (followers elsewhere poll the stored log).

The log has a size limit. Past it, lines are dropped (the build goes on) after a clear
marker, but the last lines are kept and written at the end: that is where a failing step
says what went wrong.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

from dockyard.builds.contexts import log_path
from dockyard.storage.base import FileWriter, PathNotFound, StorageDriver

TAIL_LINES = 50


class LogHub:
    """In-memory pub/sub per run: a follower waits for "something new" for its run."""

    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}

    def publish(self, run_id: int) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()

    async def wait(self, run_id: int, seconds: float) -> None:
        """Until the run's log grows or ends here, or ``seconds`` pass (writers elsewhere)."""
        event = self._events.setdefault(run_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


class RunLog:
    """The :class:`~dockyard.builds.builder.LogSink` of one run."""

    def __init__(self, storage: StorageDriver, hub: LogHub, run_id: int, limit: int) -> None:
        self.storage = storage
        self.hub = hub
        self.run_id = run_id
        self.limit = limit
        self._writer: FileWriter | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._dropped = 0
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes of log stored so far."""
        return self._size

    async def open(self, *, fresh: bool = False) -> RunLog:
        """Open the run's log; ``fresh``: it starts empty, whatever a file of that name holds
        (a run's first attempt: an id can be used again once its run was deleted with its
        workspace, and one tenant's log must never open another's). Later attempts append."""
        self._writer = await self.storage.writer(log_path(self.run_id), append=not fresh)
        self._size = self._writer.size
        return self

    async def write(self, line: str) -> None:
        assert self._writer is not None, "open() first"
        data = (line + "\n").encode("utf-8", "replace")
        if self._dropped or self._writer.size + len(data) > self.limit:
            if not self._dropped:
                await self._append(
                    f"[dockyard] the log reached its limit of {self.limit} bytes: further lines are "
                    f"dropped (the build goes on); the last {TAIL_LINES} lines follow at the end\n".encode()
                )
            self._dropped += 1
            self._tail.append(line)
            return
        await self._append(data)

    async def _append(self, data: bytes) -> None:
        assert self._writer is not None
        await self._writer.write(data)
        self._size = self._writer.size
        self.hub.publish(self.run_id)

    async def close(self) -> None:
        if self._writer is None:
            return
        if self._dropped:
            kept = len(self._tail)
            lines = [f"[dockyard] {self._dropped - kept} lines dropped; the last {kept}:", *self._tail]
            await self._append("".join(line + "\n" for line in lines).encode("utf-8", "replace"))
            self._dropped = 0
        writer, self._writer = self._writer, None
        await writer.commit()
        self.hub.publish(self.run_id)


async def read_log(storage: StorageDriver, run_id: int, offset: int = 0, limit: int | None = None) -> bytes:
    """The stored log from ``offset`` (empty when there is nothing, or nothing more, yet)."""
    try:
        size = (await storage.stat(log_path(run_id))).size
    except PathNotFound:
        return b""
    if offset >= size:
        return b""
    length = size - offset if limit is None else min(limit, size - offset)
    return b"".join([chunk async for chunk in storage.reader(log_path(run_id), offset, length)])
