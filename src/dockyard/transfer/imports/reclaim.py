"""Taking back an archive session whose import died with its process.

The row of such a session still names the dead holder and the offset its import had taken,
and the session's folder holds what it left: scratch files in ``staging/``, blobs staged
after its last checkpoint. As soon as the holder is known to be gone
(:mod:`.holders`), and while no request works on the session (its lock), the session
goes back to its stored checkpoint: offset and resume point from it, no holder, the next
generation (should the holder only be hung, its records no longer count), and the leftovers
are deleted. An importing session is receiving again, saying why, unless its finishing job
is still on the queue: that job takes the import over instead (:mod:`.finishing`). This happens when a client
asks for the session's state, when a chunk resumes it (the take-over does the same), and in
``dockyard gc``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Database
from dockyard.storage.base import StorageDriver
from dockyard.transfer.imports.checkpoint import Checkpoint, load_checkpoint, remove_leftovers
from dockyard.transfer.imports.holders import Holders
from dockyard.transfer.imports.journal import replay_plan, segments
from dockyard.transfer.imports.sessions import IMPORTING, RECEIVING, Session, interrupted, load_session
from dockyard.transfer.tables import archive_uploads


class Reclaimer:
    def __init__(self, db: Database, storage: StorageDriver, locks: UploadLocks, holders: Holders) -> None:
        self.db = db
        self.storage = storage
        self.locks = locks
        self.holders = holders

    async def holder_gone(self, s: Session) -> bool:
        """Whether ``s`` is an import whose process has died."""
        if s.state not in (RECEIVING, IMPORTING) or s.holder is None:
            return False
        return await self.holders.gone(s.holder)

    async def _gone(self, archive_id: str, handing_on: bool) -> Session | None:
        """The session, if it is an import whose process has died (and, unless ``handing_on``,
        no finishing job is left to hand it on: that job takes it over, see :mod:`.finishing`)."""
        async with self.db.read() as conn:
            s = await load_session(conn, archive_id)
        if s is None or (s.state == IMPORTING and s.finishing and not handing_on):
            return None
        return s if await self.holder_gone(s) else None

    async def reachable(self, archive_id: str) -> int:
        """The offset an import starting now reaches: its stored checkpoint, and the journal
        past it."""
        return (await self._reach(archive_id))[1]

    async def _reach(self, archive_id: str) -> tuple[Checkpoint | None, int]:
        checkpoint = await load_checkpoint(self.storage, archive_id)
        offset = checkpoint.offset if checkpoint is not None else 0
        return checkpoint, replay_plan(await segments(self.storage, archive_id), offset)[1]

    async def reclaim(self, archive_id: str, dry_run: bool = False, handing_on: bool = False) -> int | None:
        """Take the session back to its checkpoint if its import died; the number of leftover
        files deleted (with ``dry_run``: that would be), or None when it was not taken back
        (its holder lives, a request works on it, or it is no import). ``handing_on``: the
        session's finishing job asks, having found nothing to finish from."""
        if not await self._gone(archive_id, handing_on):  # no lock taken for the usual case
            return None
        async with self.locks.hold(archive_id) as held:
            if not held:
                return None
            s = await self._gone(archive_id, handing_on)  # still, now that it is held
            if s is None:
                return None
            checkpoint, reached = await self._reach(archive_id)
            if dry_run:
                return await remove_leftovers(self.storage, archive_id, checkpoint, dry_run=True)
            offset = checkpoint.offset if checkpoint is not None else 0
            values: dict[str, Any] = {
                "generation": s.generation + 1,
                "processed": reached,  # the journal goes on from the checkpoint
                "resume_offset": offset,
                "holder": None,
            }
            if s.state == IMPORTING:
                values.update(state=RECEIVING, reason=interrupted(reached))
            async with self.db.write() as conn:
                changed = await conn.execute(
                    update(archive_uploads)
                    .where(archive_uploads.c.id == archive_id, archive_uploads.c.generation == s.generation)
                    .values(**values)
                )
            if changed.rowcount == 0:
                return None
            return await remove_leftovers(self.storage, archive_id, checkpoint)
