"""How an import's end is recorded in its session: ``done`` with the images it found, or
``failed`` with the reason and nothing it staged kept.

An import ends in one of two ways: it is finished after the last chunk (``finish``, under a
durable job, see :mod:`.finishing`), or it refuses its archive between two requests
(``ended``: the feed's consumer failed while no request was pushing).
Whichever it is, the session's row says so once, and only for the import of its current
generation, with the webhook event ``import.finished`` in the same transaction. While an import
finishes, a heartbeat keeps the session's ``updated_at`` fresh,
so that another process does not take it for abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import update

from dockyard.archive.errors import ArchiveError
from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Connection, Database
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.imports.checkpoint import checkpoint_path
from dockyard.transfer.imports.feed import ImportCancelled
from dockyard.transfer.imports.journal import remove_journal
from dockyard.transfer.imports.live import LiveImports, is_current
from dockyard.transfer.imports.runner import LiveImport
from dockyard.transfer.imports.sessions import DONE, FAILED, IMPORTING, RECEIVING, load_session
from dockyard.transfer.imports.sink import session_folder
from dockyard.transfer.tables import archive_uploads
from dockyard.webhooks.outbox import record

log = logging.getLogger("dockyard.archives")

HEARTBEAT = 1.0  # seconds between progress records while importing


def reason_of(failure: BaseException) -> str:
    """What a session that failed with ``failure`` says: a refusal's reason, or that it broke."""
    return str(failure) if isinstance(failure, ArchiveError) else "the import failed on the server"


async def _tell(conn: Connection, workspace_id: int, archive_id: str, data: dict[str, Any]) -> None:
    """The webhook event ``import.finished`` (done or failed), in the transaction recording it."""
    subject = f"archives/{archive_id}"
    await record(conn, workspace_id, "import.finished", subject, {"archive": archive_id, **data})


class Outcomes:
    def __init__(self, db: Database, storage: StorageDriver, locks: UploadLocks, live: LiveImports) -> None:
        self.db = db
        self.storage = storage
        self.locks = locks
        self.live = live
        self._tasks: set[asyncio.Task[None]] = set()

    async def finish(self, archive_id: str, live: LiveImport) -> Exception | None:
        """End the import (it has every byte); the refusal, if the archive was refused."""
        heartbeat = asyncio.create_task(self._heartbeat(archive_id))
        try:
            result = await live.finish()
        except asyncio.CancelledError:
            await live.stop()  # the server is stopping: the session resumes from its checkpoint
            raise
        except ArchiveError as refused:
            await self.fail(archive_id, str(refused), live.generation)
            return refused
        except BaseException:
            log.exception("import of archive %s failed", archive_id)
            await self.fail(archive_id, "the import failed on the server", live.generation)
            raise
        finally:
            heartbeat.cancel()
        # Recorded first, for this import's generation only; then what resuming needed goes
        # (a superseded import, or one stopped in between, leaves it for the session's current one).
        async with self.db.write() as conn:
            ended = (
                await conn.execute(
                    update(archive_uploads)
                    .where(is_current(live))
                    .values(state=DONE, result=json.dumps(result), reason=None, updated_at=time.time())
                    .returning(archive_uploads.c.workspace_id, archive_uploads.c.created_by)
                )
            ).all()
            for workspace_id, created_by in ended:
                await _tell(conn, workspace_id, archive_id, {"status": DONE, "created_by": created_by})
        if ended:
            with contextlib.suppress(PathNotFound):
                await self.storage.delete(checkpoint_path(archive_id))
            await remove_journal(self.storage, archive_id)
        return None

    async def fail(self, archive_id: str, reason: str, generation: int | None = None) -> None:
        """Nothing of a refused archive stays: staged blobs go, the reason stays. With
        ``generation``, only while that import is the session's current one (one superseded by
        a take-over changes nothing of the session or its folder)."""
        current = [archive_uploads.c.id == archive_id]
        if generation is None:
            await self.live.drop(archive_id)
        else:  # an import being finished: no longer held, nothing to drop
            current.append(archive_uploads.c.generation == generation)
        async with self.db.write() as conn:
            ended = (
                await conn.execute(
                    update(archive_uploads)
                    .where(*current)
                    .values(state=FAILED, reason=reason, result=None, updated_at=time.time())
                    .returning(archive_uploads.c.workspace_id, archive_uploads.c.created_by)
                )
            ).all()
            for workspace_id, created_by in ended:
                data = {"status": FAILED, "reason": reason, "created_by": created_by}
                await _tell(conn, workspace_id, archive_id, data)
        if ended or generation is None:
            with contextlib.suppress(PathNotFound):
                await self.storage.delete(session_folder(archive_id))

    def ended(self, live: LiveImport) -> None:
        """An import refused its archive between requests: record it in the session now."""
        failure = live.failed
        if failure is None or isinstance(failure, (ImportCancelled, asyncio.CancelledError)):
            return
        self._spawn(self._refused_between_requests(live, failure))

    async def close(self) -> None:
        """Shutdown: stop what runs in the background (a session resumes from its checkpoint)."""
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refused_between_requests(self, live: LiveImport, failure: BaseException) -> None:
        """Fail the session (once no request is working on it, unless one did it first)."""
        while True:
            if not await self._current(live):  # looked at first without the session's lock: an
                return  # import superseded by another replica's must not hold up its requests
            async with self.locks.hold(live.archive_id) as held:
                async with self.db.read() as conn:
                    s = await load_session(conn, live.archive_id)
                if s is None or s.state != RECEIVING or s.generation != live.generation:
                    return  # reported, or no longer this import's session
                if held:
                    if not isinstance(failure, ArchiveError):
                        log.error("import of archive %s failed", live.archive_id, exc_info=failure)
                    await self.fail(live.archive_id, reason_of(failure))
                    return
            await asyncio.sleep(0.2)  # a request holds the session: it may report it itself

    async def _current(self, live: LiveImport) -> bool:
        """Whether ``live`` is still its receiving session's import."""
        async with self.db.read() as conn:
            s = await load_session(conn, live.archive_id)
        return s is not None and s.state == RECEIVING and s.generation == live.generation

    async def _heartbeat(self, archive_id: str) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):  # liveness is a courtesy; the import goes on
                async with self.db.write() as conn:
                    await conn.execute(
                        update(archive_uploads)
                        .where(archive_uploads.c.id == archive_id, archive_uploads.c.state == IMPORTING)
                        .values(updated_at=time.time())
                    )
