"""Garbage collection of archive upload sessions, run by the server's periodic GC and by
``dockyard gc`` (which may run while servers serve; everything here holds the session's lock):

1. sessions untouched for the purge period go, with their folders;
2. sessions whose import died with its process go back to their checkpoint, and what that
   import left in staging goes (:mod:`.reclaim`): the session stays resumable;
3. folders without a session go (a session's row is written before its folder, and the
   folders are listed before the rows are read, so a session being started is kept).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Database
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.imports.holders import Holders
from dockyard.transfer.imports.reclaim import Reclaimer
from dockyard.transfer.imports.sessions import IMPORTING, RECEIVING
from dockyard.transfer.imports.sink import session_folder
from dockyard.transfer.tables import archive_uploads

FOLDER = "archives"


async def remove_session(db: Database, storage: StorageDriver, locks: UploadLocks, archive_id: str) -> None:
    """A session's row, then its folder (the caller holds its lock)."""
    async with db.write() as conn:
        await conn.execute(delete(archive_uploads).where(archive_uploads.c.id == archive_id))
    with contextlib.suppress(PathNotFound):
        await storage.delete(session_folder(archive_id))
    locks.forget(archive_id)


@dataclass
class ArchivePurgeReport:
    sessions: list[str] = field(default_factory=list)  # expired sessions removed
    reclaimed: list[str] = field(default_factory=list)  # sessions whose import died, taken back
    files: int = 0  # files those imports left, removed
    folders: int = 0  # folders without a session, removed

    def summary(self) -> dict[str, object]:
        return {
            "archive_sessions_purged": len(self.sessions),
            "archive_imports_reclaimed": len(self.reclaimed),
            "archive_files_removed": self.files,
            "archive_folders_purged": self.folders,
        }


class ArchivePurge:
    def __init__(self, db: Database, storage: StorageDriver, locks: UploadLocks, holders: Holders) -> None:
        self.db = db
        self.storage = storage
        self.locks = locks
        self.reclaimer = Reclaimer(db, storage, locks, holders)

    async def run(self, older_than: float, dry_run: bool = False) -> ArchivePurgeReport:
        """Purge sessions untouched since ``older_than`` (epoch seconds), take back those whose
        import died, remove folders without a session. ``dry_run`` reports, deleting nothing."""
        report = ArchivePurgeReport()
        async with self.db.read() as conn:
            expired = [
                row[0]
                for row in await conn.execute(
                    select(archive_uploads.c.id).where(archive_uploads.c.updated_at < older_than)
                )
            ]
        for archive_id in expired:
            async with self.locks.hold(archive_id) as held:
                if held:
                    if not dry_run:
                        await remove_session(self.db, self.storage, self.locks, archive_id)
                    report.sessions.append(archive_id)
        async with self.db.read() as conn:
            held_imports = [
                row[0]
                for row in await conn.execute(
                    select(archive_uploads.c.id).where(
                        archive_uploads.c.holder.is_not(None),
                        archive_uploads.c.state.in_([RECEIVING, IMPORTING]),
                    )
                )
            ]
        for archive_id in held_imports:
            if archive_id in report.sessions:
                continue
            removed = await self.reclaimer.reclaim(archive_id, dry_run)
            if removed is not None:
                report.reclaimed.append(archive_id)
                report.files += removed
        report.folders = await self._orphan_folders(dry_run)
        return report

    async def _orphan_folders(self, dry_run: bool) -> int:
        try:
            folders = await self.storage.list(FOLDER)
        except PathNotFound:
            return 0
        async with self.db.read() as conn:  # after listing: see the module's docstring
            known = {row[0] for row in await conn.execute(select(archive_uploads.c.id))}
        removed = 0
        for folder in folders:
            if folder.rsplit("/", 1)[1] in known:
                continue
            if not dry_run:
                with contextlib.suppress(PathNotFound):
                    await self.storage.delete(folder)
            removed += 1
        return removed
