"""Archive uploads: a docker-save or OCI archive arrives in one or many chunks and is
imported as it arrives.

A session is a row of ``archive_uploads`` plus the folder ``archives/<id>/`` in storage
(see :mod:`.sink`). Each chunk's bytes go straight into the session's import
(:mod:`.runner`), which streams the blobs it finds into staging: the archive itself
is never written anywhere, every blob at most once. The import lives across requests in
the process that takes the chunks, and stores checkpoints between tar entries, so a session
survives a dropped connection (the import waits for the next chunk) and a server restart
or a chunk sent to another replica (a new import starts from the checkpoint and replays the
journal, the bytes past it that each chunk's end left in storage, :mod:`.journal`; where the
journal does not reach, the client is told to send from there: ``GET`` gives the offset, and
a chunk that starts elsewhere gets 416 with it; see :mod:`.live`). States::

    receiving --PUT--> importing --> done (images listed; versions are created from them)
        |                         +--> failed (reason; nothing staged is kept)
        +--> failed (the archive was refused while it arrived)

How an import's end is recorded (done, failed) is :mod:`.outcomes`.

One request at a time works on a session, across processes (the upload locks of the
registry): a second one gets ``Conflict``. An import whose process died (known at once, see
:mod:`.holders`; or its heartbeat older than ``STALE``) goes back to receiving, from
its checkpoint (:mod:`.reclaim`). Expired sessions are purged by GC
(:mod:`.purge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import select, update

from dockyard.archive.errors import ArchiveError
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.auth.policy import Subject
from dockyard.cluster.gates import Gate
from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.jobs.queue import JobQueue
from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.registry.quotas import Ledger
from dockyard.registry.tables import blobs
from dockyard.registry.uploads import BodyInterrupted
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.imports.feed import ImportCancelled
from dockyard.transfer.imports.finishing import Finishing
from dockyard.transfer.imports.holders import Holders
from dockyard.transfer.imports.live import LiveImports
from dockyard.transfer.imports.outcomes import Outcomes, reason_of
from dockyard.transfer.imports.purge import remove_session
from dockyard.transfer.imports.reclaim import Reclaimer
from dockyard.transfer.imports.results import ArchiveImageInfo, ImportedImage, images_of
from dockyard.transfer.imports.runner import LiveImport
from dockyard.transfer.imports.sessions import (
    DONE,
    FAILED,
    IMPORTING,
    RECEIVING,
    ArchiveStatus,
    OffsetMismatch,
    Session,
    TooLarge,
    load_session,
    sibling_holding,
    stale,
    status_of,
)
from dockyard.transfer.tables import archive_uploads

log = logging.getLogger("dockyard.archives")

LAYER_COMPRESSIONS = ("gzip", "zstd")


class ArchiveUploads:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        locks: UploadLocks,
        ledger: Ledger,
        max_bytes: int,
        queue: JobQueue,
        lease_seconds: float,
        run_dir: Path | None = None,
        journal: bool = True,
        finish_gate: Gate | None = None,
    ) -> None:
        """``queue``, ``lease_seconds``: the job queue that imports are finished under
        (:mod:`.finishing`) and its leases' length. ``run_dir``: where this host's server
        processes take forwarded requests (``holder_socket``); None when there is no such place.
        ``journal``: keep the bytes past each checkpoint in storage, so that any replica goes on
        (see :mod:`.journal`). ``finish_gate``: a test seam (see :mod:`dockyard.cluster.gates`)."""
        self.db = db
        self.storage = storage
        self.locks = locks
        self.ledger = ledger
        self.max_bytes = max_bytes
        self.run_dir = run_dir
        self.holders = Holders(locks)
        self.live = LiveImports(db, storage, locks, self._is_stored, self.holders, journal)
        self.reclaimer = Reclaimer(db, storage, locks, self.holders)
        self.outcomes = Outcomes(db, storage, locks, self.live)
        self.finishing = Finishing(
            db, locks, self.live, self.outcomes, self.reclaimer, queue, lease_seconds, finish_gate
        )

    # --- sessions -----------------------------------------------------------------

    async def start(
        self, actor: Subject, workspace: str, size: int | None = None, layer_compression: str = "gzip"
    ) -> ArchiveStatus:
        """A new session in ``workspace`` (developers: it will push there)."""
        if layer_compression not in LAYER_COMPRESSIONS:
            raise Invalid(f"layer_compression is 'gzip' or 'zstd', not {layer_compression!r}")
        if size is not None and size < 0:
            raise Invalid("size must not be negative")
        self.check_size(size or 0)
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "developer")
            # Fail fast: a workspace over its quota stores nothing new (each blob is still
            # charged when the version is created, see dockyard.registry.quotas).
            await self.ledger.check(conn, ws.id, {}, "this archive")
        archive_id = str(uuid.uuid4())
        now = time.time()
        async with self.db.write() as conn:
            await conn.execute(
                archive_uploads.insert().values(
                    id=archive_id,
                    workspace_id=ws.id,
                    user_id=actor.id,
                    created_by=actor.name,
                    state=RECEIVING,
                    size=size,
                    layer_compression=layer_compression,
                    created_at=now,
                    updated_at=now,
                )
            )
        return await self.status(actor, archive_id)

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise TooLarge(
                f"the archive is {size} bytes; archives of at most {self.max_bytes} bytes are accepted"
            )

    async def check_quota(self, workspace_id: int, blobs: dict[str, int]) -> None:
        """Refuse (:class:`~dockyard.registry.errors.QuotaExceeded`) an image whose blobs
        (digest -> size) the workspace's quota has no room for; those it stores already are free."""
        async with self.db.read() as conn:
            await self.ledger.check(conn, workspace_id, blobs, "this image")

    async def _session(self, actor: Subject, archive_id: str) -> Session:
        """The session, if ``actor`` started it (or is an admin); else NotFound."""
        require_user(actor)
        async with self.db.read() as conn:
            session = await load_session(conn, archive_id)
        if session is None or not (actor.is_admin or session.user_id == actor.id):
            raise NotFound(f"archive upload {archive_id!r} not found")
        return session

    @asynccontextmanager
    async def exclusive(self, actor: Subject, archive_id: str) -> AsyncIterator[Session]:
        """The session, held: one request at a time works on it, in any process."""
        await self._session(actor, archive_id)
        async with self.locks.hold(archive_id) as held:
            if not held:
                raise Conflict(
                    "another request is working on this archive upload; try again when it is done "
                    "(GET shows its state and offset)"
                )
            yield await self._session(actor, archive_id)  # as it is now that we hold it

    async def status(self, actor: Subject, archive_id: str) -> ArchiveStatus:
        session = await self._session(actor, archive_id)
        if await self.reclaimer.holder_gone(session) and await self.reclaimer.reclaim(archive_id) is not None:
            session = await self._session(actor, archive_id)  # back at its checkpoint
        return status_of(session)

    async def _abandoned(self, s: Session) -> bool:
        """Whether ``s`` is importing in a process that is gone (or hung), with no finishing
        job left to hand it on."""
        return not s.finishing and (stale(s) or await self.reclaimer.holder_gone(s))

    async def images(self, actor: Subject, archive_id: str) -> list[ArchiveImageInfo]:
        session = await self._session(actor, archive_id)
        if session.state != DONE:
            raise Conflict(f"the archive is {session.state}; its images are known once it is imported")
        return [image.info(i) for i, image in enumerate(self.imported(session))]

    @staticmethod
    def imported(session: Session) -> list[ImportedImage]:
        return images_of(session.result)

    async def list(self, actor: Subject) -> list[ArchiveStatus]:
        """The caller's sessions, newest first."""
        require_user(actor)
        async with self.db.read() as conn:
            ids = [
                row[0]
                for row in await conn.execute(
                    select(archive_uploads.c.id)
                    .where(archive_uploads.c.user_id == actor.id)
                    .order_by(archive_uploads.c.created_at.desc())
                )
            ]
        return [await self.status(actor, archive_id) for archive_id in ids]

    async def touch(self, archive_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(archive_uploads)
                .where(archive_uploads.c.id == archive_id)
                .values(updated_at=time.time())
            )

    async def holder_socket(self, archive_id: str) -> Path | None:
        """The socket of the sibling process (same host) whose import takes this session's
        chunks, when that is not this one and it is alive: the chunk belongs there."""
        if self.run_dir is None:
            return None
        async with self.db.read() as conn:
            s = await load_session(conn, archive_id)
        return None if s is None else sibling_holding(s, self.live.me, self.run_dir)

    # --- receiving ----------------------------------------------------------------

    async def append(
        self,
        actor: Subject,
        archive_id: str,
        body: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
        total: int | None = None,
    ) -> ArchiveStatus:
        """Append a chunk; ``start`` (from Content-Range) must be the current offset."""
        async with self.exclusive(actor, archive_id) as session:
            live = await self._current(session)
            try:
                await self._append(session, live, body, start, length, total)
            except TooLarge:
                await self.outcomes.fail(
                    session.id, f"the archive exceeds {self.max_bytes} bytes, the largest accepted"
                )
                raise
        return await self.status(actor, archive_id)

    async def _current(self, s: Session) -> LiveImport:
        """The session's import: the one held here, or a new one from its checkpoint."""
        if s.state == IMPORTING and not await self._abandoned(s):
            raise Conflict("the archive is being imported; wait until the import has ended")
        if s.state == FAILED:
            raise Conflict(f"the archive upload failed: {s.reason}. Start a new upload")
        if s.state not in (RECEIVING, IMPORTING):
            raise Conflict(f"the archive upload is {s.state}; chunks are accepted only while it is receiving")
        failure = self.live.failure(s.id, s.generation)
        if failure is not None:  # refused after the last chunk was answered (a race): say so now
            await self.outcomes.fail(s.id, reason_of(failure))
            raise failure
        live = self.live.get(s.id, s.generation, s.processed) if s.state == RECEIVING else None
        if live is None:
            live = await self.live.take_over(s.id, s.generation, s.layer_compression)
            live.when_ended(self.outcomes.ended)
            if s.state != RECEIVING or s.reason is not None:
                async with self.db.write() as conn:
                    await conn.execute(
                        update(archive_uploads)
                        .where(archive_uploads.c.id == s.id)
                        .values(state=RECEIVING, reason=None, updated_at=time.time())
                    )
        return live

    async def _append(
        self,
        s: Session,
        live: LiveImport,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
        total: int | None,
    ) -> int:
        offset = live.fed
        if start is not None and start != offset:
            raise OffsetMismatch(offset, f"the chunk starts at {start}, but the upload has {offset} bytes")
        size = s.size
        if total is not None:
            if size is not None and total != size:
                raise Invalid(f"Content-Range names a total of {total} bytes; the upload declared {size}")
            self.check_size(total)
            size = total
            async with self.db.write() as conn:
                await conn.execute(
                    update(archive_uploads).where(archive_uploads.c.id == s.id).values(size=total)
                )
        if length is not None:
            if size is not None and offset + length > size:
                raise Invalid(
                    f"the chunk would take the upload to {offset + length} bytes; it declared {size}"
                )
            self.check_size(offset + length)
        received = await self._push(s.id, live, body, size)
        if length is not None and received != length:
            raise Invalid(f"expected {length} bytes, received {received}; GET the upload for its offset")
        return live.fed

    async def _push(
        self, archive_id: str, live: LiveImport, body: AsyncIterator[bytes], size: int | None
    ) -> int:
        """Feed ``body`` to the import, recording progress; a refused archive fails the session."""

        def check(total: int) -> None:
            if size is not None and total > size:
                raise Invalid(f"the upload declared {size} bytes; more arrived")
            self.check_size(total)

        try:
            recorder = asyncio.create_task(self.live.recording(live))
            try:
                return await live.push(body, check, settle=False)
            finally:
                recorder.cancel()
                with contextlib.suppress(BaseException):
                    await recorder
                if live is self.live.get(archive_id, live.generation, live.fed):
                    await self.live.record(live, chunk_end=True)
        except TooLarge:
            await self.outcomes.fail(
                archive_id, f"the archive exceeds {self.max_bytes} bytes, the largest accepted"
            )
            raise
        except ArchiveError as refused:
            await self.outcomes.fail(archive_id, str(refused))
            raise
        except (BodyInterrupted, Invalid, ImportCancelled, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("import of archive %s failed", archive_id)
            await self.outcomes.fail(archive_id, "the import failed on the server")
            raise

    # --- importing ----------------------------------------------------------------

    async def complete(
        self,
        actor: Subject,
        archive_id: str,
        body: AsyncIterator[bytes] | None = None,
        start: int | None = None,
        length: int | None = None,
        wait: bool = True,
    ) -> ArchiveStatus:
        """The last chunk (if any) is in: the import resolves the archive's images, under a
        durable job (:mod:`.finishing`). With ``wait`` this returns when the import has ended
        (raising what refused the archive); otherwise it runs on. Either way it goes on if the
        caller goes away."""
        async with self.exclusive(actor, archive_id) as s:
            live = await self._current(s)
            if body is not None:
                await self._append(s, live, body, start, length, None)
            offset = live.fed
            if s.size is not None and offset != s.size:
                raise Invalid(
                    f"the upload has {offset} of the {s.size} bytes it declared; send the rest first"
                )
            if offset == 0:
                raise Invalid("the upload is empty")
            async with self.db.write() as conn:
                # A job only with the journal: without it nobody could go on from elsewhere.
                run = await self.finishing.begin(conn, archive_id) if self.live.journal else None
                await conn.execute(
                    update(archive_uploads)
                    .where(archive_uploads.c.id == s.id)
                    .values(
                        state=IMPORTING, size=offset, processed=offset, reason=None, updated_at=time.time()
                    )
                )
            self.live.release(archive_id)  # no more chunks: the import is finished under the job
            finishing = self.finishing.start_here(archive_id, live, run)
        if wait:
            error = await asyncio.shield(finishing)
            if error is not None:
                raise error
        return await self.status(actor, archive_id)

    async def import_body(self, actor: Subject, archive_id: str, body: AsyncIterator[bytes]) -> ArchiveStatus:
        """A one-shot upload: the whole archive in one request, imported as it arrives."""
        async with self.exclusive(actor, archive_id) as s:
            if s.state != RECEIVING or s.processed:
                raise Conflict("a one-shot import needs a new, empty upload")
            live = await self._current(s)
            live.journal = None  # answered only when imported: nothing to go on from elsewhere
            async with self.db.write() as conn:
                await conn.execute(
                    update(archive_uploads)
                    .where(archive_uploads.c.id == s.id)
                    .values(state=IMPORTING, updated_at=time.time())
                )
            await self._push(s.id, live, body, s.size)
            self.live.release(archive_id)
            error = await self.outcomes.finish(archive_id, live)
            if error is not None:
                raise error
        return await self.status(actor, archive_id)

    async def close(self) -> None:
        """Shutdown: stop imports; a chunked upload resumes from its checkpoint."""
        await self.finishing.close()
        await self.outcomes.close()
        await self.live.close()

    async def _is_stored(self, digest: Digest) -> bool:
        async with self.db.read() as conn:
            row = (await conn.execute(select(blobs.c.state).where(blobs.c.digest == digest))).first()
        if row is None or row[0] != "live":
            return False
        try:
            await self.storage.stat(blob_path(digest))
        except PathNotFound:
            return False
        return True

    # --- removing -----------------------------------------------------------------

    async def delete(self, actor: Subject, archive_id: str) -> None:
        async with self.exclusive(actor, archive_id) as s:
            if s.state == IMPORTING and not await self._abandoned(s):
                raise Conflict("the archive is being imported; delete it when the import has ended")
            await self._remove(archive_id)

    async def _remove(self, archive_id: str) -> None:
        await self.live.drop(archive_id)
        await remove_session(self.db, self.storage, self.locks, archive_id)

    async def remove_failed(self, archive_id: str) -> None:
        """A one-shot upload that was refused: no trace of it stays."""
        await self._remove(archive_id)
