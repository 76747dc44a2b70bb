"""LiveImport: an import on its own thread, fed by pushes, over the memory driver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dockyard.archive.errors import UnsafeArchive
from dockyard.oci.digest import Digest
from dockyard.storage.base import PathNotFound
from dockyard.storage.memory import MemoryDriver
from dockyard.transfer.imports import runner as archive_import
from dockyard.transfer.imports.checkpoint import Checkpoint
from dockyard.transfer.imports.feed import Feed, ImportCancelled
from dockyard.transfer.imports.runner import LiveImport
from dockyard.transfer.imports.sink import staged_path
from tests.unit.archive.factories import (
    FakeImage,
    file,
    gz,
    layer_tar,
    oci_multiplatform,
    sha,
    tar_bytes,
)

FOLDER = "archives/live-test"
WAIT = 60.0  # seconds: only so that a hang fails the test


async def never_stored(digest: Digest) -> bool:
    await asyncio.sleep(0)
    return False


def accept(total: int) -> None:
    pass


async def body(data: bytes, size: int = 50_000) -> AsyncIterator[bytes]:
    """A request body: ``data`` in chunks."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def start(storage: MemoryDriver, resume: Checkpoint | None = None) -> LiveImport:
    return LiveImport("0123456789abcdef", 1, storage, FOLDER, "gzip", never_stored, resume)


async def files(storage: MemoryDriver, prefix: str) -> list[str]:
    try:
        return await storage.list(prefix)
    except PathNotFound:
        return []


async def everything(storage: MemoryDriver, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, recursively."""
    out: dict[str, bytes] = {}
    for path in await files(storage, prefix):
        try:
            out[path] = await storage.get_content(path)
        except PathNotFound:  # a folder
            out |= await everything(storage, path)
    return out


def images(count: int, layer_size: int) -> list[FakeImage]:
    return [
        FakeImage(
            [layer_tar({f"layer{n}-{i}": os.urandom(layer_size)}) for i in range(2)],
            [],
            architecture=arch,
        )
        for n, arch in enumerate(["amd64", "arm64", "ppc64le"][:count])
    ]


def expected_blobs(fakes: list[FakeImage]) -> dict[str, int]:
    blobs: dict[str, int] = {}
    for fake in fakes:
        config = fake.config()
        blobs[str(sha(config))] = len(config)
        for layer in fake.layers:
            blobs[str(sha(gz(layer)))] = len(gz(layer))
    return blobs


async def run_straight(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    storage = MemoryDriver()
    live = start(storage)
    assert await asyncio.wait_for(live.push(body(data), accept), WAIT) == len(data)
    result = await asyncio.wait_for(live.finish(), WAIT)
    return result, await everything(storage, FOLDER)


async def test_an_archive_pushed_in_two_parts_is_imported() -> None:
    fakes = images(2, 300_000)
    data = tar_bytes(oci_multiplatform(fakes))
    storage = MemoryDriver()
    live = start(storage)
    cut = len(data) // 2 + 77

    assert await asyncio.wait_for(live.push(body(data[:cut]), accept), WAIT) == cut
    assert (live.fed, live.running) == (cut, True)
    assert await asyncio.wait_for(live.push(body(data[cut:], 8191), accept), WAIT) == len(data) - cut
    result = await asyncio.wait_for(live.finish(), WAIT)

    assert not live.running
    assert live.failed is None
    assert result["format"] == "oci-layout"
    assert result["compression"] == "none"
    (image,) = result["images"]
    assert image["repo_tags"] == ["example/app:2.0"]
    assert image["platforms"] == ["linux/amd64", "linux/arm64"]
    assert image["index"] is not None
    assert len(image["manifests"]) == 2
    assert image["blobs"] == expected_blobs(fakes)
    # Every blob the image names is staged (none was stored before), and nothing else.
    staged = await everything(storage, FOLDER)
    assert set(staged) == {staged_path(FOLDER, Digest(d)) for d in image["blobs"]}
    assert result["written"] == sum(image["blobs"].values())


async def test_an_import_resumes_from_its_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_import, "CHECKPOINT_BYTES", 0)  # every boundary checkpoints
    fakes = images(3, 2 << 20)  # six layers of 2 MiB
    data = tar_bytes(oci_multiplatform(fakes))
    expected, expected_files = await run_straight(data)

    storage = MemoryDriver()
    first = start(storage)
    cut = len(data) // 2 + 12345  # in the middle of a blob
    await asyncio.wait_for(first.push(body(data[:cut]), accept), WAIT)
    checkpoint = first.checkpoint
    assert checkpoint is not None
    assert 0 < checkpoint.offset <= cut
    assert checkpoint.sink.by_name  # blobs were staged before it
    await asyncio.wait_for(first.stop(), WAIT)
    assert isinstance(first.failed, ImportCancelled)
    # What the checkpoint names stays staged.
    for blob in checkpoint.sink.by_name.values():
        assert await storage.get_content(staged_path(FOLDER, blob.digest))

    second = start(storage, resume=checkpoint)
    assert second.fed == checkpoint.offset
    rest = data[checkpoint.offset :]
    assert await asyncio.wait_for(second.push(body(rest, 65_537), accept), WAIT) == len(rest)
    result = await asyncio.wait_for(second.finish(), WAIT)

    assert result == expected
    assert await everything(storage, FOLDER) == expected_files


def hostile(early: bool) -> bytes:
    members = oci_multiplatform(images(1, 300_000))
    evil = file("../../etc/cron.d/evil", b"* * * * * root sh\n")
    if early:  # refused with most of the archive still to come: the push stops feeding it
        return tar_bytes([*members[:3], evil, *members[3:], file("padding", bytes(20 << 20))])
    return tar_bytes([*members, evil])  # blobs were staged before the bad entry comes


@pytest.mark.parametrize("early", [False, True], ids=["at-the-end", "early"])
async def test_a_hostile_archive_is_refused_and_leaves_nothing(early: bool) -> None:
    data = hostile(early)
    storage = MemoryDriver()
    live = start(storage)

    with pytest.raises(UnsafeArchive, match="path traversal"):
        await asyncio.wait_for(live.push(body(data, 1 << 20), accept), WAIT)

    assert isinstance(live.failed, UnsafeArchive)
    assert await everything(storage, FOLDER) == {}


@pytest.mark.parametrize("early", [False, True], ids=["at-the-end", "early"])
async def test_push_raises_the_refusal_however_slowly_the_import_winds_down(
    early: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The import's feed ends (its generator is closed) before its thread has recorded the
    # error. A push that woke up in between must still raise it, not report success.
    end = Feed.end

    def slow_end(feed: Feed) -> None:
        end(feed)
        if threading.current_thread().name.startswith("import-"):
            time.sleep(0.3)  # only widens the window; nothing waits for this

    monkeypatch.setattr(Feed, "end", slow_end)
    live = start(MemoryDriver())
    with pytest.raises(UnsafeArchive, match="path traversal"):
        await asyncio.wait_for(live.push(body(hostile(early), 1 << 20), accept), WAIT)


async def test_a_cancelled_waiter_does_not_cancel_the_import() -> None:
    # A request that waits for the import (finish, push) may be cancelled (the server stops,
    # the client goes away). The import goes on, and says when it has ended, and how.
    blocking = False
    entered = asyncio.Event()
    gate = asyncio.Event()

    async def is_stored(digest: Digest) -> bool:
        if blocking:
            entered.set()
            await gate.wait()
        return False

    data = tar_bytes(oci_multiplatform(images(1, 100_000)))
    live = LiveImport("fedcba9876543210", 1, MemoryDriver(), FOLDER, "gzip", is_stored)
    try:
        await asyncio.wait_for(live.push(body(data), accept), WAIT)
        blocking = True  # the configs are stored after the archive's end: the import waits there
        waiter = asyncio.ensure_future(live.finish())
        await asyncio.wait_for(entered.wait(), WAIT)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

        assert live.running  # it still works (waiting for is_stored)
        gate.set()
        result = await asyncio.wait_for(live.finish(), WAIT)
        assert result["images"][0]["repo_tags"] == ["example/app:2.0"]
    finally:
        gate.set()
        for thread in threading.enumerate():
            if thread.name == "import-fedcba98":
                await asyncio.to_thread(thread.join, WAIT)
