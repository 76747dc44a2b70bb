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
import contextlib
import os
import re
import socket
import uuid
from contextlib import AsyncExitStack

from dockyard.cluster.locks import UploadLocks

_INSTANCE = re.compile(r"[0-9a-f]{32}")
_ATTEMPTS, _WAIT = 50, 0.02  # taking this process's own lock while another asks about it


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

    async def hold(self) -> None:
        """Hold this process's liveness lock (before a session row names it; until ``close``),
        taking it again if it was lost while this process lives (its PostgreSQL connection
        dropped: others took this process for gone, and took its sessions back; the ones it
        takes from now on must not be)."""
        async with self._taking:
            if self._held is not None:
                if not await self._free(self.instance):
                    return
                held, self._held = self._held, None
                with contextlib.suppress(Exception):  # its connection is broken
                    await held.aclose()
            for _ in range(_ATTEMPTS):
                stack = AsyncExitStack()
                if await stack.enter_async_context(self.locks.hold(_key(self.instance))):
                    self._held = stack
                    return
                # Only a process asking whether this one lives holds it, for a moment.
                await stack.aclose()
                await asyncio.sleep(_WAIT)
            raise RuntimeError(f"the liveness lock of {self.me} stays taken")

    async def _free(self, instance: str) -> bool:
        """Whether nobody holds the liveness lock of ``instance`` (taking it for a moment)."""
        async with self.locks.hold(_key(instance)) as taken:
            return taken

    async def gone(self, holder: str) -> bool:
        """Whether the process ``holder`` (as a session row names it) has died. False for this
        process, and for a holder whose liveness cannot be asked (the lease decides then)."""
        if holder == self.me:
            return False
        parsed = parse_holder(holder)
        if parsed is None:
            return False
        if not await self._free(parsed[2]):
            return False
        self.locks.forget(_key(parsed[2]))  # what the dead holder's lock left behind
        return True

    async def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):  # a broken connection releases it too
                await held.aclose()
            self.locks.forget(_key(self.instance))
