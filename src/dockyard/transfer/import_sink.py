"""The registry's blob sink for archive imports: blobs are staged in the session's folder,
and a blob the registry already stores is not written again.

::

    archives/<id>/
    ├── archive          the uploaded archive, spooled once (see archive_uploads)
    ├── staging/<n>      a blob being written
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

The sink runs on the import's own event loop (in a worker thread, see archive_uploads):
it touches storage only, and asks the caller's ``is_stored`` whether a digest is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.storage.base import FileWriter, PathNotFound, StorageDriver

BUFFER = 1 << 20  # bytes gathered before a write to storage
_DECLARED = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")

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
        self._count = 0

    async def begin(self, name: str) -> _StagingWriter | _ComparingWriter:
        self._count += 1
        scratch = f"{self.folder}/staging/{self._count}"
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

    async def discard(self, names: Iterable[str]) -> None:
        """Drop blobs the import found no use for (unless another, used name has the same bytes)."""
        for name in names:
            blob = self.by_name.pop(name, None)
            if blob is None or any(other.digest == blob.digest for other in self.by_name.values()):
                continue
            self.by_digest.pop(blob.digest, None)
            if blob.staged:
                await self._delete(staged_path(self.folder, blob.digest))
                self.written -= blob.size

    async def remove_all(self) -> None:
        """A failed import: nothing it staged stays."""
        for sub in ("staging", "blobs"):
            await self._delete(f"{self.folder}/{sub}")
        self.by_name.clear()
        self.by_digest.clear()

    async def _delete(self, path: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self.storage.delete(path)


class _StagingWriter:
    def __init__(self, sink: RegistrySink, name: str, scratch: str) -> None:
        self.sink = sink
        self.name = name
        self.scratch = scratch
        self._hash = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()
        self._writer: FileWriter | None = None

    async def write(self, data: bytes | bytearray) -> None:
        self._hash.update(data)
        self._size += len(data)
        if not self._buffer and len(data) >= BUFFER:
            await (await self._open()).write(data)  # large pieces go out as they are
            return
        self._buffer += data
        if len(self._buffer) >= BUFFER:
            await self._flush()

    async def _open(self) -> FileWriter:
        if self._writer is None:
            self._writer = await self.sink.storage.writer(self.scratch)
        return self._writer

    async def _flush(self) -> None:
        writer = await self._open()
        if self._buffer:
            await writer.write(self._buffer)
            self._buffer = bytearray()

    async def finish(self) -> tuple[Digest, int]:
        await self._flush()
        assert self._writer is not None
        await self._writer.commit()  # durable before it can be renamed into the blob store
        digest = Digest(f"sha256:{self._hash.hexdigest()}")
        await self.sink.settle(self.name, digest, self._size, self.scratch)
        return digest, self._size

    async def abort(self) -> None:
        self._buffer = bytearray()
        if self._writer is not None:
            await self._writer.cancel()
        else:
            await self.sink._delete(self.scratch)


class _ComparingWriter:
    """Checks the bytes against a stored blob; turns into a staging writer on a difference."""

    def __init__(self, sink: RegistrySink, name: str, declared: Digest, scratch: str) -> None:
        self.sink = sink
        self.name = name
        self.declared = declared
        self.scratch = scratch
        self._stored: AsyncIterator[bytes] | None = aiter(sink.storage.reader(blob_path(declared)))
        self._pending = b""  # stored bytes read but not compared yet
        self._offset = 0  # where in _pending comparing continues
        self._matched = 0
        self._hash = hashlib.sha256()
        self._staging: _StagingWriter | None = None

    async def write(self, data: bytes | bytearray) -> None:
        if self._staging is not None:
            await self._staging.write(data)
            return
        pos = 0
        while pos < len(data):
            if self._offset == len(self._pending):
                chunk = await self._next_stored()
                if chunk is None:
                    await self._diverge(data[pos:])
                    return
                self._pending, self._offset = chunk, 0
            n = min(len(self._pending) - self._offset, len(data) - pos)
            if self._pending[self._offset : self._offset + n] != data[pos : pos + n]:
                await self._diverge(data[pos:])
                return
            self._hash.update(data[pos : pos + n])
            self._offset += n
            self._matched += n
            pos += n

    async def _next_stored(self) -> bytes | None:
        assert self._stored is not None
        try:
            return await anext(self._stored)
        except (StopAsyncIteration, PathNotFound):
            return None

    async def _diverge(self, rest: bytes | bytearray) -> None:
        """Stage what matched so far (copied from the stored blob), then ``rest``."""
        await self._close_stored()
        staging = _StagingWriter(self.sink, self.name, self.scratch)
        if self._matched:
            async for chunk in self.sink.storage.reader(blob_path(self.declared), 0, self._matched):
                await staging.write(chunk)
        if staging._size != self._matched:
            await staging.abort()
            raise RuntimeError(f"stored blob {self.declared} changed while an import compared against it")
        self._staging = staging
        if rest:
            await staging.write(rest)

    async def finish(self) -> tuple[Digest, int]:
        if self._staging is None:
            if self._offset < len(self._pending) or await self._next_stored() is not None:
                await self._diverge(b"")  # a proper prefix of the stored blob
            elif Digest(f"sha256:{self._hash.hexdigest()}") != self.declared:
                await self._diverge(b"")  # the stored bytes are not what their name says: keep ours
        await self._close_stored()
        if self._staging is not None:
            return await self._staging.finish()
        await self.sink.settle(self.name, self.declared, self._matched, None)
        return self.declared, self._matched

    async def abort(self) -> None:
        await self._close_stored()
        if self._staging is not None:
            await self._staging.abort()

    async def _close_stored(self) -> None:
        stored, self._stored = self._stored, None
        closer = getattr(stored, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
