"""The registry's blob sink for archive imports: blobs are staged in the session's folder,
and a blob the registry already stores is not written again.

::

    archives/<id>/
    ├── checkpoint       where a new import can take over (see :mod:`.checkpoint`)
    ├── staging/<uuid>   a blob being written (unique: two importers may share the folder)
    └── blobs/<hex>      a finished blob, named by its sha256, waiting to be committed

Deduplication:

- where the archive path names the blob's digest (OCI layouts: ``blobs/sha256/<hex>``)
  and the registry stores that blob, the writer compares instead of writing
  (:class:`~.writers.ComparingWriter`): no write at all in the common case;
- otherwise (a docker-save layer compressed on import: its digest is known only at the
  end) the blob is staged (:class:`~.writers.StagingWriter`), and dropped when it is
  settled if that digest is already stored or already staged by this import.

A staged blob is recorded at once and made durable in the background: its scratch file is
committed (fsynced) and renamed into ``blobs/`` while the next blob streams in; ``durable``
says which are there (a checkpoint names only those), ``flush`` waits for all of them. It is
moved into the registry's blob store only when a version is created from the archive, by
:meth:`dockyard.registry.blobs.BlobService.adopt` (claim, move only if the blob is absent,
link: the same order as an upload, so GC cannot race with it). Whatever an import does not
use, or leaves behind when it fails, is deleted here.

The sink runs on the import's own event loop (in a worker thread, see :mod:`.runner`): it
touches storage only, and asks the caller's ``is_stored`` whether a digest is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from dockyard.oci.digest import Digest
from dockyard.registry.uploads import BufferPool
from dockyard.storage.base import FileWriter, PathNotFound, StorageDriver
from dockyard.transfer.imports.writers import ComparingWriter, StagingWriter

_DECLARED = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_KEEP = 4  # idle buffers a sink keeps: two per writer, and a comparing writer that turns to staging

IsStored = Callable[[Digest], Awaitable[bool]]


def session_folder(archive_id: str) -> str:
    return f"archives/{archive_id}"


def staged_path(folder: str, digest: Digest) -> str:
    return f"{folder}/blobs/{digest.hex}"


def declared_digest(name: str) -> Digest | None:
    """The digest an archive path promises for its content (content-addressed OCI blobs)."""
    match = _DECLARED.fullmatch(name)
    return Digest(f"sha256:{match[1]}") if match is not None else None


@dataclass(frozen=True)
class SinkBlob:
    digest: Digest
    size: int
    staged: bool  # False: the registry already stores it and nothing was staged


class RegistrySink:
    """A ``BlobSink`` staging under ``folder``; see the module docstring."""

    def __init__(self, storage: StorageDriver, folder: str, is_stored: IsStored) -> None:
        self.storage = storage
        self.folder = folder
        self.is_stored = is_stored
        self.by_name: dict[str, SinkBlob] = {}
        self.by_digest: dict[Digest, SinkBlob] = {}
        self.written = 0  # bytes written to staging (and kept)
        self.deduplicated = 0  # bytes not kept because the blob was already stored or staged
        self.buffers = BufferPool(keep=_KEEP)  # used by one writer at a time (``begin``'s contract)
        # Staged blobs whose fsync and rename run while the next blob streams in.
        self.pending: dict[Digest, asyncio.Task[None]] = {}
        self.on_durable: Callable[[], None] = lambda: None  # called as each of them ends

    async def begin(self, name: str) -> StagingWriter | ComparingWriter:
        scratch = f"{self.folder}/staging/{uuid.uuid4().hex}"
        declared = declared_digest(name)
        if declared is not None and declared not in self.by_digest and await self.is_stored(declared):
            return ComparingWriter(self, name, declared, scratch)
        return StagingWriter(self, name, scratch)

    async def settle(self, name: str, digest: Digest, size: int, scratch: str | None) -> None:
        """Record a finished blob; ``scratch`` holds its bytes, or None when it was compared
        equal to the stored blob."""
        known = self.by_digest.get(digest)
        if known is None and (scratch is None or await self.is_stored(digest)):
            known = SinkBlob(digest, size, staged=False)
        if known is not None:
            if scratch is not None:
                await self.remove(scratch)
            self.deduplicated += size
        else:
            assert scratch is not None
            await self.storage.move(scratch, staged_path(self.folder, digest))
            known = SinkBlob(digest, size, staged=True)
            self.written += size
        self.by_digest[digest] = known
        self.by_name[name] = known

    async def settle_later(
        self, name: str, digest: Digest, size: int, writer: FileWriter, scratch: str
    ) -> None:
        """Record a finished, staged blob at once; make it durable (fsync) and rename it into
        ``blobs/`` in the background, so that the disk flushes it while the next one arrives.
        ``flush`` waits for that; a failure is raised by the next blob or by ``flush``."""
        try:
            self._raise_failed()
            known_already = self.by_digest.get(digest) is not None or await self.is_stored(digest)
        except BaseException:
            await writer.cancel()
            raise
        if known_already:
            await writer.cancel()
            await self.remove(scratch)
            known = self.by_digest.get(digest) or SinkBlob(digest, size, staged=False)
            self.deduplicated += size
        else:
            known = SinkBlob(digest, size, staged=True)
            task = asyncio.create_task(self._commit(writer, scratch, digest))
            task.add_done_callback(lambda _: self.on_durable())
            self.pending[digest] = task
            self.written += size
        self.by_digest[digest] = known
        self.by_name[name] = known

    async def _commit(self, writer: FileWriter, scratch: str, digest: Digest) -> None:
        try:
            await writer.commit()  # durable before it can be renamed into the blob store
        except BaseException:
            with contextlib.suppress(Exception):
                await writer.cancel()
            raise
        await self.storage.move(scratch, staged_path(self.folder, digest))

    def durable(self, digests: Iterable[Digest]) -> bool:
        """Whether the staged blobs ``digests`` (of ``pending`` at some point) are in ``blobs/``."""
        for digest in digests:
            task = self.pending.get(digest)
            if task is not None and (not task.done() or task.cancelled() or task.exception() is not None):
                return False
        return True

    def _raise_failed(self) -> None:
        for task in self.pending.values():
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                raise error

    async def flush(self) -> None:
        """Wait until every staged blob is durable in ``blobs/``; raise what failed."""
        if self.pending:
            await asyncio.gather(*self.pending.values(), return_exceptions=True)
        self._raise_failed()

    async def discard(self, names: Iterable[str]) -> None:
        """Drop blobs the import found no use for (unless another, used name has the same bytes)."""
        for name in names:
            blob = self.by_name.pop(name, None)
            if blob is None or any(other.digest == blob.digest for other in self.by_name.values()):
                continue
            self.by_digest.pop(blob.digest, None)
            if blob.staged:
                task = self.pending.get(blob.digest)
                if task is not None:
                    await asyncio.gather(task, return_exceptions=True)
                await self.remove(staged_path(self.folder, blob.digest))
                self.written -= blob.size

    async def remove_all(self) -> None:
        """A failed import: nothing it staged stays."""
        if self.pending:
            await asyncio.gather(*self.pending.values(), return_exceptions=True)
            self.pending.clear()
        for sub in ("staging", "blobs"):
            await self.remove(f"{self.folder}/{sub}")
        self.by_name.clear()
        self.by_digest.clear()

    async def remove(self, path: str) -> None:
        """Delete ``path`` (a file or a folder), if it is there."""
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(path)
