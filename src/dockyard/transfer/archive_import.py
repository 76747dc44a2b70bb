"""One import of a spooled archive, on an event loop of its own in a worker thread.

Decompressing, hashing and compressing take the CPU in long stretches that never yield
(see :mod:`dockyard.transfer.archives.ingest`), so the import must not run on the loop
that serves requests. The storage driver works from any loop; the database does not, so
the sink's question "is this blob stored?" is handed back to the caller's loop. The thread
cannot be cancelled: when the caller is, the import is asked to stop at its next chunk
and waited for, and what it staged is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from dockyard.oci.digest import Digest
from dockyard.storage.base import StorageDriver
from dockyard.transfer.archive_results import result_json
from dockyard.transfer.archives.decompress import Compression
from dockyard.transfer.archives.errors import UnsafeArchive
from dockyard.transfer.archives.ingest import ImportOptions, import_archive
from dockyard.transfer.import_sink import RegistrySink


@dataclass
class Progress:
    bytes: int = 0  # of the archive, read so far
    cancelled: bool = False


class ImportCancelled(Exception):
    pass


async def run_import(
    storage: StorageDriver,
    folder: str,
    spool: str,
    layer_compression: str,
    is_stored: Callable[[Digest], Awaitable[bool]],
    progress: Progress,
    body: AsyncIterator[bytes] | None = None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Import the archive at ``spool`` into staging under ``folder``; the result's JSON.
    With ``body`` (a request body on this loop), import straight from it instead: the
    archive is then never written anywhere, only the blobs it holds.

    Raises what refused the archive (``ArchiveError``); nothing staged is left then."""
    main = asyncio.get_running_loop()

    def source() -> AsyncIterator[bytes]:
        if body is None:
            return read_ahead(storage, spool, progress)
        return _bridged(body, main, progress, max_bytes)

    async def stored(digest: Digest) -> bool:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_call(is_stored, digest), main))

    sink = RegistrySink(storage, folder, stored)
    options = ImportOptions(layer_compression=Compression(layer_compression))

    async def run() -> dict[str, Any]:
        await sink.remove_all()  # what an interrupted earlier attempt left
        imported = await import_archive(source(), sink, options)
        await sink.discard(imported.unreferenced)
        return result_json(imported, sink)

    worker = asyncio.ensure_future(asyncio.to_thread(_on_own_loop, run))
    try:
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            progress.cancelled = True
            with contextlib.suppress(BaseException):
                await worker
            raise
    except BaseException:
        await sink.remove_all()
        raise


async def _bridged(
    body: AsyncIterator[bytes], main: asyncio.AbstractEventLoop, progress: Progress, max_bytes: int | None
) -> AsyncIterator[bytes]:
    """The request body's chunks, pulled from the server's loop into the import's own."""

    async def step() -> bytes | None:
        return await anext(body, None)

    while (chunk := await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(step(), main))) is not None:
        if progress.cancelled:
            raise ImportCancelled("the import was cancelled")
        progress.bytes += len(chunk)
        if max_bytes is not None and progress.bytes > max_bytes:
            raise ArchiveTooLarge(f"the archive is larger than the limit of {max_bytes} bytes")
        yield chunk


class ArchiveTooLarge(UnsafeArchive):
    pass


async def _call(function: Callable[[Digest], Awaitable[bool]], digest: Digest) -> bool:
    return await function(digest)


def _on_own_loop(factory: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    return asyncio.run(factory())


async def read_ahead(storage: StorageDriver, path: str, progress: Progress) -> AsyncIterator[bytes]:
    """The file's chunks, the next one read while the current one is being worked on."""
    chunks = aiter(storage.reader(path))
    pending: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(chunks, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(chunks, None))
            if progress.cancelled:
                raise ImportCancelled("the import was cancelled")
            progress.bytes += len(chunk)
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
