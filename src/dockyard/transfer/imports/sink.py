"""The registry's blob sink for archive imports: blobs are staged in the session's folder,
and a blob the registry already stores is not written again.

::

    archives/<id>/
    ├── checkpoint       where a new import can take over (see archive_checkpoint)
    ├── staging/<uuid>   a blob being written (unique: two importers may share the folder)
    └── blobs/<hex>      a finished blob, named by its sha256, waiting to be committed

Deduplication:

- where the archive path names the blob's digest (OCI layouts: ``blobs/sha256/<hex>``)
  and the registry stores that blob, the writer compares instead of writing: the bytes are
  checked against the stored blob as they stream past. Should they differ (the import
  recompresses an uncompressed layer, or the content is not what its name says), the
  prefix compared so far is copied from the stored blob into staging and writing goes on
  from there: correct in every case, and no write at all in the common one;
- otherwise (a docker-save layer compressed on import: its digest is known only at the
  end) the blob is staged, and dropped at ``finish`` if that digest is already stored or
  already staged by this import.

A staged blob is moved into the registry's blob store only when a version is created from
the archive, by :meth:`dockyard.registry.blobs.BlobService.adopt` (claim, move only if the
blob is absent, link: the same order as an upload, so GC cannot race with it). Whatever
an import does not use, or leaves behind when it fails, is deleted here.

Bytes take the path of a registry upload (``registry.uploads._pump``): they are copied into
pooled, page-aligned ``BUFFER``-sized buffers (a pool per sink, two buffers per writer); a
full buffer is hashed in a thread (hashlib releases the GIL) and written (``O_DIRECT`` on the
filesystem driver) at the same time, while the next one fills. A compared buffer is checked
against the stored blob's bytes with ``memcmp`` (no copies), the stored blob read two
ranges ahead, and hashed in a thread the same way. The scratch file is committed (fsynced)
before it is moved into ``blobs/``.

The sink runs on the import's own event loop (in a worker thread, see archive_uploads):
it touches storage only, and asks the caller's ``is_stored`` whether a digest is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dockyard.oci.digest import Digest, Hasher, new_hasher
from dockyard.registry.paths import blob_path
from dockyard.registry.uploads import BUFFER, BufferPool
from dockyard.storage.base import FileWriter, InvalidOffset, PathNotFound, StorageDriver

_DECLARED = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_THREADED = 1 << 16  # hash smaller pieces inline: a thread hand-off costs more than it saves
_READS_AHEAD = 2  # ranges of a stored blob read at once while comparing
_KEEP = 4  # idle buffers a sink keeps: two per writer, and a comparing writer that turns to staging

IsStored = Callable[[Digest], Awaitable[bool]]
Data = bytes | bytearray | memoryview


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

    async def begin(self, name: str) -> _StagingWriter | _ComparingWriter:
        scratch = f"{self.folder}/staging/{uuid.uuid4().hex}"
        declared = declared_digest(name)
        if declared is not None and declared not in self.by_digest and await self.is_stored(declared):
            return _ComparingWriter(self, name, declared, scratch)
        return _StagingWriter(self, name, scratch)

    async def settle(self, name: str, digest: Digest, size: int, scratch: str | None) -> None:
        """Record a finished blob; ``scratch`` holds its bytes, or None when it was compared
        equal to the stored blob."""
        known = self.by_digest.get(digest)
        if known is None and (scratch is None or await self.is_stored(digest)):
            known = SinkBlob(digest, size, staged=False)
        if known is not None:
            if scratch is not None:
                await self._delete(scratch)
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
            await self._delete(scratch)
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
                await self._delete(staged_path(self.folder, blob.digest))
                self.written -= blob.size

    async def remove_all(self) -> None:
        """A failed import: nothing it staged stays."""
        if self.pending:
            await asyncio.gather(*self.pending.values(), return_exceptions=True)
            self.pending.clear()
        for sub in ("staging", "blobs"):
            await self._delete(f"{self.folder}/{sub}")
        self.by_name.clear()
        self.by_digest.clear()

    async def _delete(self, path: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(path)


async def _hash(hasher: Hasher, view: memoryview) -> None:
    if len(view) >= _THREADED:
        await asyncio.to_thread(hasher.update, view)
    else:
        hasher.update(view)


async def _wait(task: asyncio.Future[Any] | None) -> None:
    """Wait until ``task`` is done, without cancelling it and without raising what it raised:
    it uses a buffer or a file in a thread that cannot be stopped, so it must end before either
    is reused. A cancellation of the caller is raised once the task is done."""
    if task is None:
        return
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled():
        task.exception()  # retrieved: whoever awaited it has reported it, or will
    if cancelled:
        raise asyncio.CancelledError


class _Relay:
    """Double buffering: bytes are copied into a pooled buffer on the loop; a full one is handed
    to a task (hashing, writing) while the next one fills. One task at a time, so buffers are
    worked on in order; a caller that is cancelled leaves the task running, and ``release``
    waits for it before any buffer goes back to the pool."""

    def __init__(self, pool: BufferPool) -> None:
        self.pool = pool
        self.buffer: mmap.mmap | None = None
        self.filled = 0
        self._busy: mmap.mmap | None = None
        self._task: asyncio.Task[None] | None = None

    def fill(self, data: memoryview) -> memoryview:
        """Copy what fits of ``data`` into the buffer; returns the rest."""
        if self.buffer is None:
            self.buffer, self.filled = self.pool.take(), 0
        step = min(len(data), BUFFER - self.filled)
        self.buffer[self.filled : self.filled + step] = data[:step]
        self.filled += step
        return data[step:]

    @property
    def full(self) -> bool:
        return self.filled == BUFFER

    async def hand_over(self, work: Callable[[memoryview], Awaitable[None]]) -> None:
        """Start ``work`` on the filled part of the buffer once the previous work is done;
        the next ``fill`` takes a fresh buffer."""
        await self.settle()
        buffer, size = self.buffer, self.filled
        self.buffer, self.filled = None, 0
        if buffer is None:
            return
        if not size:
            self.pool.give(buffer)
            return
        self._busy = buffer
        self._task = asyncio.ensure_future(_work_on(buffer, size, work))

    async def settle(self) -> None:
        """Wait for the work in flight; raises what it raised."""
        if self._task is None:
            return
        await asyncio.shield(self._task)
        self._task = None
        busy, self._busy = self._busy, None
        if busy is not None:
            self.pool.give(busy)

    async def release(self) -> None:
        """Wait for the work in flight (not raising its failure) and return every buffer."""
        task, self._task = self._task, None
        try:
            await _wait(task)
        finally:
            for buffer in (self._busy, self.buffer):
                if buffer is not None:
                    self.pool.give(buffer)
            self._busy, self.buffer, self.filled = None, None, 0


async def _work_on(buffer: mmap.mmap, size: int, work: Callable[[memoryview], Awaitable[None]]) -> None:
    with memoryview(buffer)[:size] as view:
        await work(view)


class _StagingWriter:
    def __init__(self, sink: RegistrySink, name: str, scratch: str) -> None:
        self.sink = sink
        self.name = name
        self.scratch = scratch
        self.size = 0
        self._hash = new_hasher()
        self._relay = _Relay(sink.buffers)
        self._writer: FileWriter | None = None

    async def write(self, data: Data) -> None:
        self.size += len(data)
        with memoryview(data) as whole:
            rest = whole.cast("B")
            while rest:
                rest = self._relay.fill(rest)
                if self._relay.full:
                    await self._relay.hand_over(self._consume)

    async def _open(self) -> FileWriter:
        if self._writer is None:
            # append: the filesystem driver writes aligned buffers with O_DIRECT at the writer's
            # size but the rest through the descriptor's own offset, which only O_APPEND keeps
            # at the end of the file
            self._writer = await self.sink.storage.writer(self.scratch, append=True)
        return self._writer

    async def _consume(self, view: memoryview) -> None:
        writer = await self._open()
        # Both must be done with the view before it is released, even when one fails.
        outcomes = await asyncio.gather(_hash(self._hash, view), writer.write(view), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def finish(self) -> tuple[Digest, int]:
        await self._relay.hand_over(self._consume)
        await self._relay.settle()
        await self._relay.release()
        writer = await self._open()
        digest = Digest(f"sha256:{self._hash.hexdigest()}")
        self._writer = None  # the sink finishes it (fsync, rename) or drops it
        await self.sink.settle_later(self.name, digest, self.size, writer, self.scratch)
        return digest, self.size

    async def abort(self) -> None:
        await self._relay.release()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer.cancel()
        await self.sink._delete(self.scratch)


class _StoredReader:
    """A stored blob in ``BUFFER``-sized ranges (the comparing writer's buffers), ``_READS_AHEAD``
    of them read at once: a disk serves a few requests in parallel much faster than one after
    another (measured here, 4 MiB reads of a file not in the page cache: 450-530 MB/s one at a
    time, 1.3-1.6 GB/s two at a time)."""

    def __init__(self, storage: StorageDriver, path: str) -> None:
        self._storage = storage
        self._path = path
        self._size: int | None = None
        self._offset = 0  # where the next read starts
        self._reads: deque[asyncio.Task[bytes]] = deque()

    async def next(self) -> bytes | None:
        """The next range; None at the end (or when the blob is gone or shrank)."""
        if self._size is None:
            try:
                self._size = (await self._storage.stat(self._path)).size
            except PathNotFound:
                self._size = 0
        self._read_ahead()
        if not self._reads:
            return None
        # Shielded: cancelling a read would close the file while a thread reads it.
        chunk = await asyncio.shield(self._reads[0])
        self._reads.popleft()
        self._read_ahead()
        return chunk or None

    def _read_ahead(self) -> None:
        assert self._size is not None
        while len(self._reads) < _READS_AHEAD and self._offset < self._size:
            length = min(BUFFER, self._size - self._offset)
            self._reads.append(asyncio.ensure_future(self._read(self._offset, length)))
            self._offset += length

    async def _read(self, offset: int, length: int) -> bytes:
        try:
            chunks = [chunk async for chunk in self._storage.reader(self._path, offset, length)]
        except (PathNotFound, InvalidOffset):
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def close(self) -> None:
        """Wait for the reads in flight (they cannot be stopped) and drop them."""
        reads, self._reads = self._reads, deque()
        for task in reads:
            await _wait(task)


class _ComparingWriter:
    """Checks the bytes against a stored blob, a buffer at a time; turns into a staging writer
    at the first buffer that differs."""

    def __init__(self, sink: RegistrySink, name: str, declared: Digest, scratch: str) -> None:
        self.sink = sink
        self.name = name
        self.declared = declared
        self.scratch = scratch
        self._stored = _StoredReader(sink.storage, blob_path(declared))
        self._pending = b""  # stored bytes read but not compared yet
        self._offset = 0  # where in _pending comparing continues
        self._matched = 0  # bytes found equal to the stored blob's, in whole buffers
        self._hash = new_hasher()
        self._relay = _Relay(sink.buffers)
        self._staging: _StagingWriter | None = None

    async def write(self, data: Data) -> None:
        if self._staging is not None:
            await self._staging.write(data)
            return
        with memoryview(data) as whole:
            rest = whole.cast("B")
            while rest:
                rest = self._relay.fill(rest)
                if self._relay.full and not await self._check():
                    await self._diverge(rest)
                    return

    async def _check(self) -> bool:
        """Compare the filled buffer with the stored bytes that come next; when equal, hash it
        (in a task, while the next buffer fills). False when it differs or the stored blob ends."""
        assert self._relay.buffer is not None
        with memoryview(self._relay.buffer)[: self._relay.filled] as mine:
            pos = 0
            while pos < len(mine):
                if self._offset == len(self._pending):
                    chunk = await self._stored.next()
                    if chunk is None:
                        return False
                    self._pending, self._offset = chunk, 0
                n = min(len(self._pending) - self._offset, len(mine) - pos)
                # startswith compares with memcmp and copies neither side (slicing would copy both;
                # comparing memoryviews goes byte by byte)
                if not self._pending.startswith(mine[pos : pos + n], self._offset):
                    return False
                self._offset += n
                pos += n
        self._matched += self._relay.filled
        await self._relay.hand_over(self._consume)
        return True

    async def _consume(self, view: memoryview) -> None:
        await _hash(self._hash, view)

    async def _diverge(self, rest: memoryview) -> None:
        """Stage what matched so far (copied from the stored blob), the buffer that did not
        match, then ``rest``."""
        await self._stored.close()
        staging = _StagingWriter(self.sink, self.name, self.scratch)
        try:
            if self._matched:
                async for chunk in self.sink.storage.reader(blob_path(self.declared), 0, self._matched):
                    await staging.write(chunk)
            if staging.size != self._matched:
                raise RuntimeError(f"stored blob {self.declared} changed while an import compared against it")
            if self._relay.buffer is not None and self._relay.filled:
                with memoryview(self._relay.buffer)[: self._relay.filled] as unmatched:
                    await staging.write(unmatched)
            await self._relay.release()
            if rest:
                await staging.write(rest)
        except BaseException:
            await staging.abort()
            raise
        self._staging = staging

    async def finish(self) -> tuple[Digest, int]:
        if self._staging is None and self._relay.filled and not await self._check():
            await self._diverge(memoryview(b""))  # the last, partial buffer differs
        if self._staging is None:
            await self._relay.settle()
            if self._offset < len(self._pending) or await self._stored.next() is not None:
                await self._diverge(memoryview(b""))  # a proper prefix of the stored blob
            elif Digest(f"sha256:{self._hash.hexdigest()}") != self.declared:
                await self._diverge(memoryview(b""))  # the stored bytes are not what their name says
        await self._close()
        if self._staging is not None:
            return await self._staging.finish()
        await self.sink.settle(self.name, self.declared, self._matched, None)
        return self.declared, self._matched

    async def abort(self) -> None:
        await self._close()
        if self._staging is not None:
            await self._staging.abort()

    async def _close(self) -> None:
        await self._stored.close()
        await self._relay.release()
