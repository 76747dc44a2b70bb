"""One archive import, fed as the archive arrives, on an event loop of its own in a thread.

The archive is never written anywhere: each request's body is handed to the import
(:mod:`.feed`) as it is received, and the import streams the blobs it finds into
staging (:mod:`.sink`), so every byte is received once, hashed once and written at
most once (as a blob). Decompressing, hashing and compressing take the CPU in long
stretches that never yield, so the import does not run on the loop that serves requests;
the storage driver works from any loop, and the sink's question "is this blob stored?" is
handed back to the server's loop.

An import outlives the request that started it: a chunked upload feeds it one request
after another. Between tar entries of an uncompressed archive it offers checkpoints
(:mod:`.checkpoint`): its owner stores the newest from time to time, and a new
import can start from one when this one is gone (server restart, another replica). A
compressed archive cannot be resumed in the middle of its stream: it starts over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dockyard.archive.decompress import Compression
from dockyard.archive.errors import ArchiveError
from dockyard.archive.ingest import ImportOptions, ImportState, import_archive
from dockyard.oci.digest import Digest
from dockyard.registry.uploads import BodyInterrupted
from dockyard.storage.base import StorageDriver
from dockyard.transfer.imports.checkpoint import Checkpoint, restore_sink, sink_state
from dockyard.transfer.imports.feed import Feed, FeedStopped
from dockyard.transfer.imports.journal import Journal
from dockyard.transfer.imports.results import result_json
from dockyard.transfer.imports.sink import RegistrySink

CHECKPOINT_BYTES = 8 << 20  # a checkpoint is taken at an entry boundary this far past the last
CHECKPOINT_SECONDS = 1.0  # ... or this long after it

IsStored = Callable[[Digest], Awaitable[bool]]


class LiveImport:
    """An import running in its own thread, taking the archive's bytes from ``push``."""

    def __init__(
        self,
        archive_id: str,
        generation: int,
        storage: StorageDriver,
        folder: str,
        layer_compression: str,
        is_stored: IsStored,
        resume: Checkpoint | None = None,
    ) -> None:
        self.archive_id = archive_id
        self.generation = generation
        self.fed = resume.offset if resume is not None else 0  # archive bytes handed over
        self.checkpoint = resume  # the newest, replaced by the import thread
        self.saved = self.fed  # offset of the checkpoint stored in the session (its owner's business)
        self.last_used = time.monotonic()
        self._storage = storage
        self._folder = folder
        self._layer_compression = layer_compression
        self._is_stored = is_stored
        self._resume = resume
        self._feed = Feed()
        self._result: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._result.set_running_or_notify_cancel()  # so that a cancelled waiter cannot cancel it
        self._loop = asyncio.get_running_loop()
        self._sink: RegistrySink | None = None
        # Checkpoints taken while blobs they name were still being made durable.
        self._candidates: list[tuple[Checkpoint, list[Digest]]] = []
        self._mark = (self.fed, time.monotonic())
        self.journal: Journal | None = None  # kept by its owner (chunked uploads only)
        self._thread = threading.Thread(target=self._run, name=f"import-{archive_id[:8]}", daemon=True)
        self._thread.start()

    # --- the server's side --------------------------------------------------------

    @property
    def failed(self) -> BaseException | None:
        """What ended the import with an error, once it has."""
        if not self._result.done() or self._result.cancelled():
            return None
        return self._result.exception()

    @property
    def running(self) -> bool:
        return not self._result.done()

    async def push(
        self,
        body: AsyncIterator[bytes],
        check: Callable[[int], None],
        settle: bool = True,
        journaled: bool = False,
    ) -> int:
        """Hand ``body`` to the import, ``check``ing each new total first (raise to refuse);
        returns the bytes taken, raising what refused the archive. With ``settle`` it returns
        once the import has worked on all of them; otherwise as soon as they are queued (at
        most ``Feed.capacity`` wait), so that the next request's bytes arrive while the
        import works: an error is then raised by a later push, or reported by ``when_ended``.
        When the client went away midway, what did arrive is kept (``BodyInterrupted``).
        ``journaled``: the bytes are in the journal already (a replay), not kept again."""
        received = 0
        interrupted = False
        self.last_used = time.monotonic()
        try:
            async for chunk in body:
                check(self.fed + len(chunk))
                try:
                    self._feed.enqueue(chunk)
                except FeedStopped:
                    break
                self.fed += len(chunk)  # the import has it, even if waiting for room is cancelled
                received += len(chunk)
                if self.journal is not None and not journaled:
                    self.journal.add(chunk)
                    if self.journal.full:
                        await self.journal.write()
                await self._feed.room()
        except BodyInterrupted:
            interrupted = True
        finally:
            self.last_used = time.monotonic()
        if settle:
            await self.settle()
        else:
            await self._raise_if_ended()
        if interrupted:
            raise BodyInterrupted
        return received

    async def settle(self) -> None:
        """Wait until the import has worked on everything pushed; raise what it failed with."""
        await self._feed.drained()
        await self._raise_if_ended()

    async def _raise_if_ended(self) -> None:
        if self._feed.ended:  # the import stopped taking bytes: it failed (its error is raised)
            await asyncio.wrap_future(self._result)
            raise RuntimeError(f"the import of archive {self.archive_id} ended before its last byte")

    def when_ended(self, callback: Callable[[LiveImport], None]) -> None:
        """Call ``callback(self)`` on the server's loop once the import has ended."""

        def ended(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # the server's loop is closed: nobody to tell
                self._loop.call_soon_threadsafe(callback, self)

        self._result.add_done_callback(ended)

    async def finish(self) -> dict[str, Any]:
        """No more bytes: the import resolves the archive's images; their JSON."""
        self._feed.close()
        return await asyncio.wrap_future(self._result)

    async def stop(self) -> None:
        """Stop the import, keeping what it staged (a checkpoint may name it)."""
        self._feed.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wrap_future(self._result)

    # --- the import's thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            result = asyncio.run(self._main())
        except BaseException as exc:
            self._result.set_exception(exc)
        else:
            self._result.set_result(result)
        finally:
            self._feed.end()

    async def _main(self) -> dict[str, Any]:
        sink = RegistrySink(self._storage, self._folder, self._stored)
        sink.on_durable = self._promote
        self._sink = sink
        state: ImportState | None = None
        if self._resume is not None:
            restore_sink(sink, self._resume.sink)
            state = self._resume.state
        else:
            await sink.remove_all()  # what an earlier attempt left
        options = ImportOptions(layer_compression=Compression(self._layer_compression))
        try:
            imported = await import_archive(self._feed.chunks(), sink, options, state, self._boundary)
            await sink.discard(imported.unreferenced)
        except ArchiveError:
            await sink.remove_all()  # a refused archive leaves nothing
            raise
        except BaseException:
            # Stopped, or broken: what it staged may be named by a checkpoint (or belong to
            # the import that took over); the session's owner decides. Commits in flight end.
            await asyncio.gather(*sink.pending.values(), return_exceptions=True)
            raise
        return result_json(imported, sink)

    def _boundary(self, offset: int, take: Callable[[], ImportState]) -> None:
        last_offset, last_time = self._mark
        now = time.monotonic()
        if offset - last_offset < CHECKPOINT_BYTES and now - last_time < CHECKPOINT_SECONDS:
            return
        sink = self._sink
        assert sink is not None
        waiting = list(sink.pending)  # a commit that failed keeps its checkpoints from counting
        self._candidates.append((Checkpoint(take(), sink_state(sink)), waiting))
        self._mark = (offset, now)
        self._promote()

    def _promote(self) -> None:
        """The newest checkpoint whose blobs are all durable becomes ``checkpoint``."""
        sink = self._sink
        if sink is None:
            return
        for index in range(len(self._candidates) - 1, -1, -1):
            candidate, waiting = self._candidates[index]
            if sink.durable(waiting):
                self.checkpoint = candidate
                del self._candidates[: index + 1]
                return

    async def _stored(self, digest: Digest) -> bool:
        future = asyncio.run_coroutine_threadsafe(_call(self._is_stored, digest), self._loop)
        return await asyncio.wrap_future(future)


async def _call(function: IsStored, digest: Digest) -> bool:
    return await function(digest)
