"""Archive uploads: a docker-save or OCI archive arrives in chunks, then is imported once.

A session is a row of ``archive_uploads`` plus the folder ``archives/<id>/`` in storage
(see :mod:`.import_sink`). While ``receiving``, each chunk is appended to the file
``archive``: its size is the offset, so a session survives a dropped connection and a
server restart (the client asks for the offset and goes on from there). When the last
chunk is in, the import reads that file once, from start to end, and streams each blob
into the staging area (compressing docker-save layers on the way), so the archive is
spooled to disk once and every blob is written at most once; the spool is deleted when
the import ends, whatever the outcome (unless the server stops mid-import: then it stays
for another PUT). States::

    receiving --PUT--> importing --> done (images listed; versions are created from them)
                                 \\-> failed (reason; nothing staged is kept)

The import runs on an event loop of its own in a worker thread (:mod:`.archive_import`),
since decompressing, hashing and compressing take the CPU in long stretches; the request's
loop keeps serving and records progress (``processed`` bytes and a heartbeat) every second. One request at a
time works on a session, across processes (the upload locks of the registry): a second
one gets ``Conflict``. An import whose process died (heartbeat older than ``STALE``) can be
started again with another PUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from dockyard.auth.errors import Conflict, Invalid, NotFound
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.auth.policy import Subject
from dockyard.catalog.usage import Usage
from dockyard.db.engine import Database
from dockyard.db.tables import archive_uploads, blobs, workspaces
from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.registry.upload_locks import UploadLocks
from dockyard.registry.uploads import BUFFER, BodyInterrupted, BufferPool
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.archive_import import ArchiveTooLarge, Progress, run_import
from dockyard.transfer.archive_results import ArchiveImageInfo, ImportedImage, images_of
from dockyard.transfer.archives.errors import ArchiveError
from dockyard.transfer.import_sink import session_folder

log = logging.getLogger("dockyard.archives")

RECEIVING, IMPORTING, DONE, FAILED = "receiving", "importing", "done", "failed"
LAYER_COMPRESSIONS = ("gzip", "zstd")
HEARTBEAT = 1.0  # seconds between progress records while importing
STALE = 30.0  # an import whose heartbeat is older than this has died with its process
# Counting workspace usage for a quota must see every image, whoever asks.
SYSTEM = Subject("user", None, "system", is_admin=True)


class TooLarge(Exception):
    """The archive is over the size limit, or the workspace over its quota."""


class OffsetMismatch(Exception):
    """A chunk does not start where the upload is; ``offset`` is where it is."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class ArchiveStatus:
    id: str
    workspace: str
    state: str  # receiving, importing, done, failed
    offset: int  # bytes received
    size: int | None  # the archive's size, when declared or complete
    processed: int  # bytes of the archive imported so far
    reason: str | None  # why it failed
    layer_compression: str
    created_by: str
    created_at: float
    updated_at: float
    format: str | None = None  # docker-save, docker-save-blobs, oci-layout (once imported)
    compression: str | None = None  # of the archive itself (once imported)
    images: list[ArchiveImageInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_written: int | None = None  # blob bytes staged by the import
    bytes_deduplicated: int | None = None  # blob bytes already stored, not written again


@dataclass(frozen=True)
class _Session:
    id: str
    workspace_id: int
    workspace: str
    user_id: int
    created_by: str
    state: str
    size: int | None
    processed: int
    layer_compression: str
    reason: str | None
    result: dict[str, Any] | None
    created_at: float
    updated_at: float


def spool_path(archive_id: str) -> str:
    return f"{session_folder(archive_id)}/archive"


class ArchiveUploads:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        locks: UploadLocks,
        usage: Usage,
        max_bytes: int,
        quota: int,
    ) -> None:
        self.db = db
        self.storage = storage
        self.locks = locks
        self.usage = usage
        self.max_bytes = max_bytes
        self.quota = quota
        self._buffers = BufferPool()
        self._tasks: set[asyncio.Task[None]] = set()

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
        await self.check_quota(workspace, 0)
        archive_id = str(uuid.uuid4())
        writer = await self.storage.writer(spool_path(archive_id))
        await writer.close()
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

    async def check_quota(self, workspace: str, adding: int) -> None:
        """Refuse when ``adding`` more bytes would take the workspace over its quota."""
        if self.quota <= 0:
            return
        used = (await self.usage.workspace(SYSTEM, workspace)).bytes
        if used + adding > self.quota:
            what = f"this image adds {adding} bytes, " if adding else ""
            raise TooLarge(
                f"workspace {workspace!r} stores {used} bytes of images; {what}which would exceed "
                f"its quota of {self.quota} bytes. Delete versions it no longer needs, or ask an "
                "administrator for a larger quota"
            )

    async def _session(self, actor: Subject, archive_id: str) -> _Session:
        """The session, if ``actor`` started it (or is an admin); else NotFound."""
        require_user(actor)
        try:
            uuid.UUID(archive_id)
        except ValueError:
            raise NotFound(f"archive upload {archive_id!r} not found") from None
        stmt = (
            select(archive_uploads, workspaces.c.name.label("workspace_name"))
            .join(workspaces, workspaces.c.id == archive_uploads.c.workspace_id)
            .where(archive_uploads.c.id == archive_id)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None or not (actor.is_admin or row._mapping["user_id"] == actor.id):
            raise NotFound(f"archive upload {archive_id!r} not found")
        m = row._mapping
        return _Session(
            id=m["id"],
            workspace_id=m["workspace_id"],
            workspace=m["workspace_name"],
            user_id=m["user_id"],
            created_by=m["created_by"],
            state=m["state"],
            size=m["size"],
            processed=m["processed"],
            layer_compression=m["layer_compression"],
            reason=m["reason"],
            result=json.loads(m["result"]) if m["result"] else None,
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )

    @asynccontextmanager
    async def exclusive(self, actor: Subject, archive_id: str) -> AsyncIterator[_Session]:
        """The session, held: one request at a time works on it, in any process."""
        await self._session(actor, archive_id)
        async with self.locks.hold(archive_id) as held:
            if not held:
                raise Conflict(
                    "another request is working on this archive upload; try again when it is done "
                    "(GET shows its state and offset)"
                )
            yield await self._session(actor, archive_id)  # as it is now that we hold it

    async def _offset(self, archive_id: str) -> int:
        try:
            return (await self.storage.stat(spool_path(archive_id))).size
        except PathNotFound:
            return 0

    async def status(self, actor: Subject, archive_id: str) -> ArchiveStatus:
        return await self._status(await self._session(actor, archive_id))

    async def _status(self, s: _Session) -> ArchiveStatus:
        state, reason = s.state, s.reason
        if state == IMPORTING and s.updated_at < time.time() - STALE:
            state, reason = FAILED, "the import was interrupted (the server stopped); PUT again to retry"
        offset = await self._offset(s.id) if state in (RECEIVING, IMPORTING) else s.size or 0
        result = s.result or {}
        return ArchiveStatus(
            id=s.id,
            workspace=s.workspace,
            state=state,
            offset=offset,
            size=s.size,
            processed=s.processed,
            reason=reason,
            layer_compression=s.layer_compression,
            created_by=s.created_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
            format=result.get("format"),
            compression=result.get("compression"),
            images=[image.info(i) for i, image in enumerate(self.imported(s))],
            warnings=list(result.get("warnings", [])),
            bytes_written=result.get("written"),
            bytes_deduplicated=result.get("deduplicated"),
        )

    async def images(self, actor: Subject, archive_id: str) -> list[ArchiveImageInfo]:
        session = await self._session(actor, archive_id)
        if session.state != DONE:
            raise Conflict(f"the archive is {session.state}; its images are known once it is imported")
        return [image.info(i) for i, image in enumerate(self.imported(session))]

    @staticmethod
    def imported(session: _Session) -> list[ImportedImage]:
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
            await self._append(session, body, start, length, total)
        return await self.status(actor, archive_id)

    async def _append(
        self,
        s: _Session,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
        total: int | None,
    ) -> int:
        try:
            return await self._append_checked(s, body, start, length, total)
        except TooLarge:
            await self._fail(s.id, f"the archive exceeds {self.max_bytes} bytes, the largest accepted")
            raise
        finally:
            await self.touch(s.id)

    async def _append_checked(
        self,
        s: _Session,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
        total: int | None,
    ) -> int:
        if s.state != RECEIVING:
            raise Conflict(f"the archive upload is {s.state}; chunks are accepted only while it is receiving")
        offset = await self._offset(s.id)
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
        received = await self._receive(s.id, body, offset, size)
        if length is not None and received != length:
            raise Invalid(f"expected {length} bytes, received {received}; GET the upload for its offset")
        return offset + received

    async def _receive(
        self, archive_id: str, body: AsyncIterator[bytes], offset: int, size: int | None
    ) -> int:
        """Append the body to the spool in ``BUFFER`` steps; what arrived before a dropped
        connection is kept, so that the client can resume after it."""
        writer = await self.storage.writer(spool_path(archive_id), append=True)
        buffer, filled, received = self._buffers.take(), 0, 0
        interrupted = False
        try:
            try:
                async for chunk in body:
                    if size is not None and offset + received + len(chunk) > size:
                        raise Invalid(f"the upload declared {size} bytes; more arrived")
                    self.check_size(offset + received + len(chunk))
                    received += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        step = min(len(view), BUFFER - filled)
                        buffer[filled : filled + step] = view[:step]
                        filled += step
                        view = view[step:]
                        if filled == BUFFER:
                            await writer.write(memoryview(buffer))
                            filled = 0
            except BodyInterrupted:
                interrupted = True
            if filled:
                with memoryview(buffer)[:filled] as rest:
                    await writer.write(rest)
        finally:
            await writer.close()
            self._buffers.give(buffer)
        if interrupted:
            raise BodyInterrupted
        return received

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
        """The last chunk (if any) is in: import the archive. With ``wait`` this returns when
        the import has ended (raising what refused the archive); otherwise it runs on."""
        async with self.exclusive(actor, archive_id) as s:
            stale = s.state == IMPORTING and s.updated_at < time.time() - STALE
            if s.state != RECEIVING and not stale:
                raise Conflict(f"the archive upload is {s.state}; only a receiving upload can be completed")
            offset = await self._offset(s.id)
            if body is not None and not stale:
                offset = await self._append(s, body, start, length, None)
            if s.size is not None and offset != s.size:
                raise Invalid(
                    f"the upload has {offset} of the {s.size} bytes it declared; send the rest first"
                )
            if offset == 0:
                raise Invalid("the upload is empty")
            async with self.db.write() as conn:
                await conn.execute(
                    update(archive_uploads)
                    .where(archive_uploads.c.id == s.id)
                    .values(state=IMPORTING, size=offset, processed=0, reason=None, updated_at=time.time())
                )
        if wait:
            error = await self._run_import(archive_id, s.layer_compression)
            if error is not None:
                raise error
        else:
            task = asyncio.create_task(self._background(archive_id, s.layer_compression))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await self.status(actor, archive_id)

    async def import_body(self, actor: Subject, archive_id: str, body: AsyncIterator[bytes]) -> ArchiveStatus:
        """A one-shot upload: import straight from the request body as it arrives. Nothing
        of the archive is written; its blobs are written once, to staging. (Chunked uploads
        spool the archive, which is what lets them resume after a restart.)"""
        async with self.exclusive(actor, archive_id) as s:
            if s.state != RECEIVING or await self._offset(s.id):
                raise Conflict("a one-shot import needs a new, empty upload")
            async with self.db.write() as conn:
                await conn.execute(
                    update(archive_uploads)
                    .where(archive_uploads.c.id == s.id)
                    .values(state=IMPORTING, processed=0, reason=None, updated_at=time.time())
                )
            await self._drop_spool(s.id)
            try:
                await self._import(s.id, s.layer_compression, body)
            except ArchiveTooLarge as exc:
                raise TooLarge(str(exc)) from None
        return await self.status(actor, archive_id)

    async def _background(self, archive_id: str, layer_compression: str) -> None:
        with contextlib.suppress(Exception):  # recorded in the session (and logged when a bug)
            await self._run_import(archive_id, layer_compression)

    async def close(self) -> None:
        """Stop background imports (shutdown); they can be started again with a PUT."""
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run_import(self, archive_id: str, layer_compression: str) -> Exception | None:
        """Import the spooled archive, holding the session; the refusal, if it was refused."""
        async with self.locks.hold(archive_id) as held:
            if not held:
                return None  # another process took it over
            try:
                await self._import(archive_id, layer_compression)
            except (ArchiveError, TooLarge) as refused:
                return refused
        return None

    async def _import(
        self, archive_id: str, layer_compression: str, body: AsyncIterator[bytes] | None = None
    ) -> None:
        progress = Progress()
        heartbeat = asyncio.create_task(self._heartbeat(archive_id, progress))
        try:
            result = await run_import(
                self.storage,
                session_folder(archive_id),
                spool_path(archive_id),
                layer_compression,
                self._is_stored,
                progress,
                body,
                self.max_bytes,
            )
        except asyncio.CancelledError:
            raise  # the server is stopping: the spool stays, so that a PUT imports it again
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, ArchiveError) else "the import failed on the server"
            if not isinstance(exc, ArchiveError):
                log.exception("import of archive %s failed", archive_id)
            await self._fail(archive_id, reason)
            raise
        finally:
            heartbeat.cancel()
        await self._drop_spool(archive_id)
        async with self.db.write() as conn:
            await conn.execute(
                update(archive_uploads)
                .where(archive_uploads.c.id == archive_id)
                .values(
                    state=DONE,
                    processed=progress.bytes,
                    result=json.dumps(result),
                    reason=None,
                    updated_at=time.time(),
                )
            )

    async def _heartbeat(self, archive_id: str, progress: Progress) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):  # progress is a courtesy; the import goes on
                async with self.db.write() as conn:
                    await conn.execute(
                        update(archive_uploads)
                        .where(archive_uploads.c.id == archive_id, archive_uploads.c.state == IMPORTING)
                        .values(processed=progress.bytes, updated_at=time.time())
                    )

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

    async def _fail(self, archive_id: str, reason: str) -> None:
        """Nothing of a refused archive stays: spool and staged blobs go, the reason stays."""
        await self._drop_spool(archive_id)
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(session_folder(archive_id))
        async with self.db.write() as conn:
            await conn.execute(
                update(archive_uploads)
                .where(archive_uploads.c.id == archive_id)
                .values(state=FAILED, reason=reason, result=None, updated_at=time.time())
            )

    async def _drop_spool(self, archive_id: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(spool_path(archive_id))

    # --- removing -----------------------------------------------------------------

    async def delete(self, actor: Subject, archive_id: str) -> None:
        async with self.exclusive(actor, archive_id) as s:
            if s.state == IMPORTING and s.updated_at >= time.time() - STALE:
                raise Conflict("the archive is being imported; delete it when the import has ended")
            await self._remove(archive_id)

    async def _remove(self, archive_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(archive_uploads).where(archive_uploads.c.id == archive_id))
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(session_folder(archive_id))
        self.locks.forget(archive_id)

    async def remove_failed(self, archive_id: str) -> None:
        """A one-shot upload that was refused: no trace of it stays."""
        await self._remove(archive_id)

    async def purge_stale(self, older_than: float) -> int:
        """Remove sessions untouched since ``older_than`` and folders without a session."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(archive_uploads.c.id).where(archive_uploads.c.updated_at < older_than)
                )
            ).all()
            known = {r[0] for r in await conn.execute(select(archive_uploads.c.id))}
        removed = 0
        for (archive_id,) in rows:
            async with self.locks.hold(archive_id) as held:
                if held:
                    await self._remove(archive_id)
                    removed += 1
        try:
            folders = await self.storage.list("archives")
        except PathNotFound:
            folders = []
        for folder in folders:
            archive_id = folder.rsplit("/", 1)[1]
            if archive_id in known:
                continue
            with contextlib.suppress(PathNotFound):
                if (await self.storage.stat(folder)).modified < older_than:
                    await self.storage.delete(folder)
                    removed += 1
        return removed
