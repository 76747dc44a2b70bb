"""Staged blobs are made durable (committed, renamed into ``blobs/``) in the background, and a
checkpoint never names a staged blob before it is there: over a memory driver whose commits
wait until the test lets them go (or fail)."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Awaitable, Callable

import pytest

from dockyard.oci.digest import Digest
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.storage.memory import MemoryDriver, MemoryWriter
from dockyard.transfer.imports import runner as archive_import
from dockyard.transfer.imports import sink as sink_module
from dockyard.transfer.imports.checkpoint import Checkpoint
from dockyard.transfer.imports.sink import RegistrySink, staged_path
from tests.support.spies import AsyncioSpy
from tests.unit.archive.factories import gz, oci_multiplatform, sha, tar_bytes
from tests.unit.transfer.imports.test_live import FOLDER, WAIT, accept, body, expected_blobs, images, start


class _GatedDisk(MemoryDriver):
    """Commits wait for ``gate`` (whatever it is), then run ``on_commit`` (which may raise).
    ``at_gate`` counts the commits that got there."""

    def __init__(self, gate: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self.gate = gate
        self.on_commit: Callable[[bytes], None] = lambda data: None
        self.writers: list[MemoryWriter] = []
        self.at_gate = 0

    async def writer(self, path: str, append: bool = False) -> MemoryWriter:
        driver = self

        class Gated(MemoryWriter):
            async def commit(self) -> None:
                driver.at_gate += 1
                await driver.gate()
                driver.on_commit(bytes(self._buffer))
                await super().commit()

        await super().writer(path, append)
        writer = Gated(self, path, b"")
        self.writers.append(writer)
        return writer


def _event_disk() -> tuple[_GatedDisk, asyncio.Event]:
    """Commits wait for an event of the test's loop (for a sink used on that loop)."""
    event = asyncio.Event()

    async def gate() -> None:
        await event.wait()

    return _GatedDisk(gate), event


def _thread_disk() -> tuple[_GatedDisk, threading.Event]:
    """Commits wait for a threading event (for an import on a loop of its own)."""
    event = threading.Event()

    async def gate() -> None:
        await asyncio.to_thread(event.wait, WAIT)

    return _GatedDisk(gate), event


def _sink(storage: MemoryDriver) -> RegistrySink:
    async def is_stored(digest: Digest) -> bool:
        return False

    return RegistrySink(storage, FOLDER, is_stored)


def _exists(storage: MemoryDriver, path: str) -> bool:
    # A single lookup (no listing): safe while the import's thread adds files.
    try:
        storage._get(path)
    except PathNotFound:
        return False
    return True


async def _everything(storage: StorageDriver, prefix: str) -> list[str]:
    out: list[str] = []
    try:
        children = await storage.list(prefix)
    except PathNotFound:
        return []
    for path in children:
        if (await storage.stat(path)).is_dir:
            out += await _everything(storage, path)
        else:
            out.append(path)
    return out


async def _stage(sink: RegistrySink, name: str, data: bytes) -> Digest:
    writer = await sink.begin(name)
    for start_at in range(0, len(data), 100_000):
        await writer.write(data[start_at : start_at + 100_000])
    digest, _ = await writer.finish()
    return digest


async def _until(ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` (it may look at an import's thread) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not ready():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


# --- the sink -----------------------------------------------------------------------


async def test_a_finished_blob_is_recorded_at_once_and_durable_once_committed() -> None:
    storage, go = _event_disk()
    sink = _sink(storage)
    data = os.urandom(3 << 20)

    digest = await _stage(sink, "x/layer.tar", data)
    await _until(lambda: storage.at_gate == 1, "the blob's commit never started")  # as far as it goes

    assert sink.by_name["x/layer.tar"].digest == digest == Digest.of(data)
    assert sink.by_name["x/layer.tar"].staged
    assert not sink.durable([digest])
    assert not _exists(storage, staged_path(FOLDER, digest))

    go.set()
    await asyncio.wait_for(sink.flush(), WAIT)

    assert sink.durable([digest])
    assert await storage.get_content(staged_path(FOLDER, digest)) == data
    assert await _everything(storage, f"{FOLDER}/staging") == []


async def test_a_failed_commit_is_raised_by_flush_and_by_the_next_blob() -> None:
    storage, go = _event_disk()
    go.set()

    def fail(data: bytes) -> None:
        raise OSError(errno.EIO, "Input/output error")

    storage.on_commit = fail
    sink = _sink(storage)
    first = await _stage(sink, "a/layer.tar", os.urandom(1 << 20))

    with pytest.raises(OSError, match="Input/output error"):
        await asyncio.wait_for(sink.flush(), WAIT)
    assert not sink.durable([first])
    with pytest.raises(OSError, match="Input/output error"):
        await _stage(sink, "b/layer.tar", os.urandom(1 << 20))

    await sink.remove_all()
    assert await _everything(storage, FOLDER) == []


async def test_a_blob_refused_after_a_failed_commit_leaves_no_open_writer() -> None:
    # The next blob's finish raises the earlier failure; the import then aborts that writer
    # (ingest._abort). The storage writer it had opened must not be left open: on the
    # filesystem driver it holds a file descriptor (two with O_DIRECT).
    storage, go = _event_disk()
    go.set()

    def fail(data: bytes) -> None:
        raise OSError(errno.EIO, "Input/output error")

    storage.on_commit = fail
    sink = _sink(storage)
    await _stage(sink, "a/layer.tar", os.urandom(1 << 20))
    await asyncio.wait_for(asyncio.gather(*sink.pending.values(), return_exceptions=True), WAIT)

    writer = await sink.begin("b/layer.tar")
    await writer.write(os.urandom(1 << 20))
    with pytest.raises(OSError, match="Input/output error"):
        await writer.finish()
    await writer.abort()

    second = storage.writers[-1]
    assert second._closed, "the refused blob's storage writer was neither committed nor cancelled"


async def test_discarding_a_blob_being_committed_waits_for_it_then_deletes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, go = _event_disk()
    sink = _sink(storage)
    digest = await _stage(sink, "x/layer.tar", os.urandom(2 << 20))
    await _until(lambda: storage.at_gate == 1, "the blob's commit never started")

    gathers = AsyncioSpy("gather")  # how the sink waits for its commits
    monkeypatch.setattr(sink_module, "asyncio", gathers)
    discarding = asyncio.create_task(sink.discard(["x/layer.tar"]))
    await gathers.reached(unless=discarding)
    assert not discarding.done()  # it waits for the commit

    go.set()
    await asyncio.wait_for(discarding, WAIT)

    assert not _exists(storage, staged_path(FOLDER, digest))
    assert await _everything(storage, FOLDER) == []
    assert sink.by_name == {}
    assert sink.written == 0


# --- checkpoints of a live import ---------------------------------------------------


def _missing(storage: MemoryDriver, checkpoint: Checkpoint | None) -> list[str]:
    """Staged blobs ``checkpoint`` names that are not in ``blobs/``."""
    if checkpoint is None:
        return []
    return [
        name
        for name, blob in checkpoint.sink.by_name.items()
        if blob.staged and not _exists(storage, staged_path(FOLDER, blob.digest))
    ]


async def test_a_checkpoint_names_only_blobs_already_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_import, "CHECKPOINT_BYTES", 0)  # every boundary offers one
    storage, go = _thread_disk()
    fakes = images(2, 3 << 20)  # four layers of 3 MiB
    data = tar_bytes(oci_multiplatform(fakes))
    live = start(storage)
    seen: list[Checkpoint] = []
    violations: list[list[str]] = []
    pushed = False

    async def watch() -> None:
        while not pushed:
            checkpoint = live.checkpoint
            if checkpoint is not None and (not seen or seen[-1] is not checkpoint):
                seen.append(checkpoint)
                if missing := _missing(storage, checkpoint):
                    violations.append(missing)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    try:
        assert await asyncio.wait_for(live.push(body(data, 1 << 20), accept), WAIT) == len(data)
        pushed = True
        await watcher
        # Every blob has streamed in; none of them could be committed.
        assert violations == []
        assert _missing(storage, live.checkpoint) == []
        assert await _everything(storage, f"{FOLDER}/blobs") == []

        go.set()
        # The layers: JSON blobs (configs, manifests) are kept in memory and staged at the end.
        names = {str(sha(gz(layer))) for fake in fakes for layer in fake.layers}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            checkpoint = live.checkpoint
            named = set() if checkpoint is None else {str(b.digest) for b in checkpoint.sink.by_name.values()}
            if names <= named:
                break
            assert loop.time() < deadline, "no checkpoint past the blobs once they were durable"
            await asyncio.sleep(0.01)

        assert checkpoint is not None
        staged = [blob for blob in checkpoint.sink.by_name.values() if blob.staged]
        assert {str(blob.digest) for blob in staged} >= names
        for blob in staged:
            assert _exists(storage, staged_path(FOLDER, blob.digest))
        result = await asyncio.wait_for(live.finish(), WAIT)
        assert result["images"][0]["blobs"] == expected_blobs(fakes)
    finally:
        pushed = True
        go.set()
        await asyncio.wait_for(live.stop(), WAIT)


async def test_a_blob_whose_commit_failed_is_not_named_by_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The last layer of an OCI layout fails to commit. The entries after it (config, manifests,
    # index: JSON kept in memory, staged only at the archive's end) offer checkpoints while no
    # other blob is pending. The failure is only raised by the next staged blob or by the final
    # flush; until then no checkpoint naming that layer may be promoted: it is not in blobs/.
    monkeypatch.setattr(archive_import, "CHECKPOINT_BYTES", 0)
    storage, go = _thread_disk()
    go.set()
    fakes = images(1, 300_000)
    doomed = sha(gz(fakes[0].layers[-1]))

    def fail(data: bytes) -> None:
        if Digest.of(data) == doomed:
            raise OSError(errno.EIO, "Input/output error")

    storage.on_commit = fail
    data = tar_bytes(oci_multiplatform(fakes))
    cut = data.find(f"blobs/sha256/{sha(fakes[0].config()).hex}".encode())  # the config's header
    assert cut > 0
    assert cut % 512 == 0
    live = start(storage)
    try:
        await asyncio.wait_for(live.push(body(data[:cut]), accept), WAIT)

        def commit() -> asyncio.Task[None] | None:  # the layer's, in the import's thread
            sink = live._sink
            return None if sink is None else sink.pending.get(doomed)

        await _until(lambda: (task := commit()) is not None and task.done(), "the layer's commit never ended")
        ended = commit()
        assert ended is not None
        assert isinstance(ended.exception(), OSError), "the layer's commit did not fail"
        await asyncio.wait_for(live.push(body(data[cut:]), accept), WAIT)

        checkpoint = live.checkpoint
        assert checkpoint is not None
        assert _missing(storage, checkpoint) == []
        with pytest.raises(OSError, match="Input/output error"):
            await asyncio.wait_for(live.finish(), WAIT)
    finally:
        await asyncio.wait_for(live.stop(), WAIT)
