"""The archive imports this process is feeding, and what they record in their sessions.

A chunked upload's import lives across requests in the process that received its chunks
(:class:`.runner.LiveImport`). The session row says which import is current:

- ``processed``: the bytes the current import has taken (the offset a client sends from);
- ``resume_offset``: where its newest stored checkpoint (``archives/<id>/checkpoint``) is;
- ``generation``: bumped whenever a new import takes over, so an older one (in this or
  another process) knows it is stale;
- ``holder``: the process whose import it is (:mod:`.holders`), which any process can
  ask whether it is still alive: when it died, the session is taken back to its checkpoint at
  once (:mod:`.reclaim`);
- ``updated_at``: renewed every ``LEASE`` seconds while this process holds the import. When
  it is older than ``LEASE_STALE``, the holder is taken for gone too (a hung process), and the
  session's offset is ``resume_offset``.

A chunk (in any process, holding the session's lock) uses the import held here when its
generation and ``processed`` match the row; otherwise it starts a new one from the stored
checkpoint (or from byte 0), after deleting what earlier imports left beside it, and feeds it
what the journal holds past the checkpoint (:mod:`.journal`, written as each chunk ends), so
that it goes on where the last chunk ended, in whichever replica that was. Imports left
without a chunk for ``IDLE`` seconds are stopped: their checkpoint stays, and the session's
offset goes back to it. Progress and checkpoints are recorded only under the session's lock,
so that no import records while another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import ColumnElement, and_, select, update

from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Database
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.imports.checkpoint import (
    Checkpoint,
    checkpoint_path,
    encode,
    load_checkpoint,
    remove_leftovers,
)
from dockyard.transfer.imports.holders import Holders
from dockyard.transfer.imports.journal import Journal, replay, replay_plan, segments
from dockyard.transfer.imports.runner import IsStored, LiveImport
from dockyard.transfer.imports.sink import session_folder
from dockyard.transfer.tables import archive_uploads

log = logging.getLogger("dockyard.archives")

LEASE = 5.0
LEASE_STALE = 15.0
IDLE = 900.0
MAX_HELD = 32  # imports one process holds at once
RECORD_EVERY = 1.0  # seconds between progress records while a chunk streams


def is_current(live: LiveImport) -> ColumnElement[bool]:
    """The session row, while ``live`` is its current import."""
    return and_(archive_uploads.c.id == live.archive_id, archive_uploads.c.generation == live.generation)


class LiveImports:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        locks: UploadLocks,
        is_stored: IsStored,
        holders: Holders,
        journal: bool = True,
    ) -> None:
        self.db = db
        self.journal = journal
        self.storage = storage
        self.locks = locks
        self.is_stored = is_stored
        self.holders = holders
        self.me = holders.me
        self._held: dict[str, LiveImport] = {}
        self._tender: asyncio.Task[None] | None = None

    def failure(self, archive_id: str, generation: int) -> BaseException | None:
        """What the session's current import failed with, when it is held here and failed."""
        live = self._held.get(archive_id)
        if live is None or live.generation != generation:
            return None
        return live.failed

    def get(self, archive_id: str, generation: int, processed: int) -> LiveImport | None:
        """The import held here, if it is the session's current one."""
        live = self._held.get(archive_id)
        if live is None or live.generation != generation or live.fed != processed or not live.running:
            return None
        return live

    async def take_over(self, archive_id: str, generation: int, layer_compression: str) -> LiveImport:
        """A new import for the session (whose lock the caller holds), from its stored
        checkpoint (or from byte 0); what earlier imports left beside it goes."""
        await self.drop(archive_id)
        await self._make_room()
        await self.holders.hold()  # before the row names this process, and still held
        checkpoint = await self.load(archive_id)
        offset = checkpoint.offset if checkpoint is not None else 0
        generation += 1
        async with self.db.write() as conn:
            await conn.execute(
                update(archive_uploads)
                .where(archive_uploads.c.id == archive_id)
                .values(
                    generation=generation,
                    processed=offset,
                    resume_offset=offset,
                    holder=self.me,
                    updated_at=time.time(),
                )
            )
        await remove_leftovers(self.storage, archive_id, checkpoint)
        live = LiveImport(
            archive_id,
            generation,
            self.storage,
            session_folder(archive_id),
            layer_compression,
            self.is_stored,
            checkpoint,
        )
        self._held[archive_id] = live
        try:
            await self._replay(live, offset)
        except BaseException:
            self._held.pop(archive_id, None)
            await live.stop()
            raise
        if self._tender is None or self._tender.done():
            self._tender = asyncio.create_task(self._tend())
        return live

    async def _replay(self, live: LiveImport, offset: int) -> None:
        """Feed the new import what the journal holds past its checkpoint (the bytes earlier
        imports took, in any replica), so that the upload goes on where they left it."""
        found = await segments(self.storage, live.archive_id)
        plan, end = replay_plan(found, offset)
        chain = {segment.path for segment, _ in plan}
        for segment in found:  # before the checkpoint, or past a gap: never replayed
            if segment.path not in chain:
                with contextlib.suppress(PathNotFound):
                    await self.storage.delete(segment.path)
        if plan:
            await live.push(replay(self.storage, plan), lambda _: None, settle=False, journaled=True)
            async with self.db.write() as conn:
                await conn.execute(update(archive_uploads).where(is_current(live)).values(processed=live.fed))
        if self.journal:
            live.journal = Journal(self.storage, live.archive_id, end, [s for s, _ in plan])

    async def _make_room(self) -> None:
        """Hold at most ``MAX_HELD`` imports (each is a thread with buffers): let go of the
        least recently used ones that no request is working on."""
        for live in sorted(self._held.values(), key=lambda held: held.last_used):
            if len(self._held) < MAX_HELD:
                return
            async with self.locks.hold(live.archive_id) as held:
                if held and self._held.get(live.archive_id) is live:
                    del self._held[live.archive_id]
                    with contextlib.suppress(Exception):
                        await self._let_go(live)

    def release(self, archive_id: str) -> LiveImport | None:
        """Stop holding the import (it is being finished); returns it."""
        return self._held.pop(archive_id, None)

    async def drop(self, archive_id: str) -> None:
        live = self._held.pop(archive_id, None)
        if live is not None:
            await live.stop()

    async def load(self, archive_id: str) -> Checkpoint | None:
        return await load_checkpoint(self.storage, archive_id)

    async def record(self, live: LiveImport, chunk_end: bool = False) -> None:
        """Store the newest checkpoint (if newer) and the offset, for the current generation;
        at a chunk's end (or letting go) the journal first, so that the offset is one any
        replica can go on from."""
        if chunk_end and live.journal is not None:
            await live.journal.write()
        values: dict[str, object] = {"processed": live.fed, "updated_at": time.time()}
        checkpoint = live.checkpoint
        data = None
        if checkpoint is not None and checkpoint.offset > live.saved:
            data = await asyncio.to_thread(encode, checkpoint)
            values["resume_offset"] = checkpoint.offset
        async with self.db.write() as conn:
            changed = await conn.execute(update(archive_uploads).where(is_current(live)).values(**values))
        if changed.rowcount == 0 or data is None or checkpoint is None:
            return  # not the session's current import any more (or nothing new to store)
        await self.storage.put_content(checkpoint_path(live.archive_id), data)
        live.saved = checkpoint.offset
        if live.journal is not None:
            await live.journal.trim(checkpoint.offset)

    async def recording(self, live: LiveImport) -> None:
        """Record progress every ``RECORD_EVERY`` seconds (run as a task while a chunk streams)."""
        while True:
            await asyncio.sleep(RECORD_EVERY)
            with contextlib.suppress(Exception):  # progress is a courtesy; the chunk goes on
                await self.record(live)

    async def _let_go(self, live: LiveImport) -> None:
        """Stop an import held here; the session's offset goes back to what its checkpoint and
        journal hold."""
        with contextlib.suppress(Exception):
            await self.record(live, chunk_end=True)
        offset = live.saved if live.journal is None else max(live.saved, live.journal.end)
        async with self.db.write() as conn:
            await conn.execute(update(archive_uploads).where(is_current(live)).values(processed=offset))
        await live.stop()

    async def _tend(self) -> None:
        """Renew the lease of held sessions; let go of idle imports."""
        while self._held:
            await asyncio.sleep(LEASE)
            now = time.monotonic()
            for archive_id, live in list(self._held.items()):
                if now - live.last_used < IDLE and live.running:
                    continue
                if await self._superseded(live):  # another's now: stopped here without its lock,
                    if self._held.get(archive_id) is live:  # which that one's requests take
                        del self._held[archive_id]
                        await live.stop()
                    continue
                async with self.locks.hold(archive_id) as held:
                    if held and self._held.get(archive_id) is live:
                        del self._held[archive_id]
                        with contextlib.suppress(Exception):
                            await self._let_go(live)
            with contextlib.suppress(Exception):
                await self._renew()
            with contextlib.suppress(Exception):
                await self.holders.hold()  # still held (see Holders.hold)

    async def _superseded(self, live: LiveImport) -> bool:
        """Whether another import (here or in another process) has taken ``live``'s session
        over, or the session is gone; False when that cannot be known now."""
        try:
            async with self.db.read() as conn:
                row = (
                    await conn.execute(
                        select(archive_uploads.c.generation).where(archive_uploads.c.id == live.archive_id)
                    )
                ).first()
        except Exception:
            return False
        return row is None or row[0] != live.generation

    async def _renew(self) -> None:
        by_generation = [(live.archive_id, live.generation) for live in self._held.values()]
        if not by_generation:
            return
        async with self.db.write() as conn:
            for archive_id, generation in by_generation:
                await conn.execute(
                    update(archive_uploads)
                    .where(archive_uploads.c.id == archive_id, archive_uploads.c.generation == generation)
                    .values(updated_at=time.time())
                )

    async def close(self) -> None:
        """Shutdown: every held import stops; its session resumes from the checkpoint."""
        if self._tender is not None:
            self._tender.cancel()
            with contextlib.suppress(BaseException):
                await self._tender
        held, self._held = list(self._held.values()), {}
        for live in held:
            async with self.locks.hold(live.archive_id) as ours:
                if not ours:  # another process is taking it over: it records, not this one
                    await live.stop()
                    continue
                with contextlib.suppress(Exception):
                    await self._let_go(live)
        await self.holders.close()
