"""When manifests were last pulled, recorded without a database write per pull.

A pull (a GET of a manifest by tag or digest; a HEAD only asks whether it exists) notes
``(repository, digest) -> time`` in this process's memory, keeping the latest. Every
:data:`FLUSH_SECONDS` (a loop in :mod:`dockyard.app.lifespan`) and at shutdown the notes go
to ``manifest_pulls`` in one transaction, one batched upsert that keeps the later of the
stored and the noted time. Several processes each flush their own notes; the upsert's max
makes the order irrelevant. A process killed without its shutdown loses at most one period of
notes: the time is a retention hint ("not pulled for D days"), measured in days.

Memory is bounded: at :data:`MAX_NOTES` distinct manifests waiting, a flush is started at once;
should flushes fail meanwhile (the notes are kept for the next), the oldest notes beyond twice
that are dropped, logged once per process. A flush looks the repositories up :data:`_BATCH` names
per statement (PostgreSQL takes at most 32,767 parameters in one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import case, select

from dockyard.auth.tables import repositories
from dockyard.db.engine import Database
from dockyard.registry.tables import manifest_pulls

log = logging.getLogger("dockyard.pulls")

FLUSH_SECONDS = 60.0
MAX_NOTES = 50_000
_BATCH = 1000  # repository names per lookup


class PullRecorder:
    def __init__(
        self, db: Database, clock: Callable[[], float] = time.time, max_notes: int = MAX_NOTES
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_notes = max_notes
        self._notes: dict[tuple[str, str], float] = {}
        self._flushing: asyncio.Task[int] | None = None
        self._dropped = False

    def pulled(self, repository: str, digest: str) -> None:
        """Note a pull now (no I/O)."""
        key = (repository, digest)
        now = self.clock()
        if self._notes.get(key, 0.0) < now:
            self._notes[key] = now
        if len(self._notes) >= self.max_notes and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon())
        self._cap()

    def _cap(self) -> None:
        """Past twice :attr:`max_notes` (flushes failing), keep only the newest ``max_notes``."""
        if len(self._notes) <= 2 * self.max_notes:
            return
        newest = sorted(self._notes.items(), key=lambda note: note[1])[-self.max_notes :]
        dropped = len(self._notes) - len(newest)
        self._notes = dict(newest)
        if not self._dropped:
            self._dropped = True
            log.warning("pull times are not being written; dropped the %d oldest (logged once)", dropped)

    async def _flush_soon(self) -> int:
        try:
            return await self.flush()
        finally:
            self._flushing = None

    @property
    def pending(self) -> int:
        """How many manifests have pulls not yet written."""
        return len(self._notes)

    async def flush(self) -> int:
        """Write the notes in one transaction; the number of manifests written. On failure the
        notes are kept for the next flush."""
        notes, self._notes = self._notes, {}
        if not notes:
            return 0
        try:
            async with self.db.write() as conn:
                names = sorted({repo for repo, _ in notes})
                ids: dict[str, int] = {}
                for start in range(0, len(names), _BATCH):
                    found = await conn.execute(
                        select(repositories.c.name, repositories.c.id).where(
                            repositories.c.name.in_(names[start : start + _BATCH])
                        )
                    )
                    ids.update((name, int(repo_id)) for name, repo_id in found)
                rows = [
                    {"repository_id": ids[repo], "digest": digest, "last_pulled_at": at}
                    for (repo, digest), at in notes.items()
                    if repo in ids
                ]
                if rows:
                    stmt = self.db.insert(manifest_pulls)
                    later = case(
                        (
                            stmt.excluded.last_pulled_at > manifest_pulls.c.last_pulled_at,
                            stmt.excluded.last_pulled_at,
                        ),
                        else_=manifest_pulls.c.last_pulled_at,
                    )
                    await conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["repository_id", "digest"], set_={"last_pulled_at": later}
                        ),
                        rows,
                    )
        except Exception:
            for key, at in notes.items():  # keep them (merged with newer ones) for the next flush
                if self._notes.get(key, 0.0) < at:
                    self._notes[key] = at
            self._cap()
            raise
        return len(rows)

    async def run(self, stop: asyncio.Event, period: float = FLUSH_SECONDS) -> None:
        """Flush every ``period`` until ``stop``, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
            try:
                await self.flush()
            except Exception:
                log.exception("recording pull times failed; retrying next period")
