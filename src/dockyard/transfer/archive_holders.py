"""Which server process holds an archive session's import, and whether it is still alive.

A session row names its holder as ``host:pid:instance``; the instance is random per process,
so a restarted server (on the same host, even with the same pid, as in a container) is never
taken for the one that died. From its first import on, a process holds a lock named after its
instance, in the registry's upload locks: the system releases it when the process dies
(``flock`` on one machine, a PostgreSQL advisory lock between replicas). Any other process,
a ``dockyard gc`` included, learns that a holder is gone by taking that lock: at once, not
when a lease runs out, and whatever the number of workers and replicas.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from contextlib import AsyncExitStack

from dockyard.registry.upload_locks import UploadLocks

ALIVE_FOR = 1.0  # seconds a holder found alive is believed alive without asking again
_INSTANCE = re.compile(r"[0-9a-f]{32}")


def _key(instance: str) -> str:
    return f"archive-holder-{instance}"


def parse_holder(holder: str) -> tuple[str, int, str] | None:
    """(host, pid, instance) of a holder as a session row names it; None for a holder
    recorded by an older Dockyard (``host:pid``), whose liveness cannot be asked."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid, instance = parts
    if not host or not pid.isdigit() or not _INSTANCE.fullmatch(instance):
        return None
    return host, int(pid), instance


class Holders:
    def __init__(self, locks: UploadLocks) -> None:
        self.locks = locks
        self.instance = uuid.uuid4().hex
        self.me = f"{socket.gethostname()}:{os.getpid()}:{self.instance}"
        self._held: AsyncExitStack | None = None
        self._taking = asyncio.Lock()
        self._alive: dict[str, float] = {}  # holder -> when it was last found alive

    async def hold(self) -> None:
        """Hold this process's liveness lock (before a session row names it; until ``close``)."""
        async with self._taking:
            if self._held is not None:
                return
            stack = AsyncExitStack()
            taken = await stack.enter_async_context(self.locks.hold(_key(self.instance)))
            if not taken:  # a random 128-bit name nobody else uses
                await stack.aclose()
                raise RuntimeError(f"the liveness lock of {self.me} is taken")
            self._held = stack

    async def gone(self, holder: str) -> bool:
        """Whether the process ``holder`` (as a session row names it) has died. False for this
        process, and for a holder whose liveness cannot be asked (the lease decides then)."""
        if holder == self.me:
            return False
        parsed = parse_holder(holder)
        if parsed is None:
            return False
        seen = self._alive.get(holder)
        if seen is not None and time.monotonic() - seen < ALIVE_FOR:
            return False
        key = _key(parsed[2])
        async with self.locks.hold(key) as taken:
            pass
        if taken:
            self._alive.pop(holder, None)
            self.locks.forget(key)  # what the dead holder's lock left behind
            return True
        now = time.monotonic()
        self._alive = {h: t for h, t in self._alive.items() if now - t < ALIVE_FOR}
        self._alive[holder] = now
        return False

    async def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.aclose()
            self.locks.forget(_key(self.instance))
