"""The registry's import sink over the memory and filesystem drivers: staging, deduplication by
comparing against stored blobs (and falling back to staging when the bytes differ), discarding."""

from __future__ import annotations

import asyncio
import errno
import gzip
import mmap
import os
import random
from pathlib import Path

import pytest

from dockyard.archive.ingest import import_archive
from dockyard.archive.sink import BlobWriter
from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.registry.uploads import BUFFER, BufferPool
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.storage.filesystem import FilesystemDriver
from dockyard.storage.memory import MemoryDriver, MemoryWriter
from dockyard.transfer.imports import relay
from dockyard.transfer.imports.sink import RegistrySink, staged_path
from tests.support.spies import AsyncioSpy
from tests.unit.archive.factories import (
    FakeImage,
    chunked,
    docker_save_old,
    layer_tar,
    oci_multiplatform,
    tar_bytes,
)

FOLDER = "archives/test"


async def _store(storage: MemoryDriver, data: bytes) -> Digest:
    digest = Digest.of(data)
    await storage.put_content(blob_path(digest), data)
    return digest


def _sink(storage: MemoryDriver, stored: set[Digest]) -> RegistrySink:
    async def is_stored(digest: Digest) -> bool:
        return digest in stored

    return RegistrySink(storage, FOLDER, is_stored)


async def _files(storage: StorageDriver, prefix: str) -> list[str]:
    try:
        return await storage.list(prefix)
    except PathNotFound:
        return []


async def _write(sink: RegistrySink, name: str, data: bytes, step: int = 1000) -> tuple[Digest, int]:
    writer = await sink.begin(name)
    for start in range(0, len(data), step):
        await writer.write(data[start : start + step])
    found = await writer.finish()
    await sink.flush()  # staged blobs are made durable in the background
    return found


async def test_a_new_blob_is_staged_under_its_digest() -> None:
    storage = MemoryDriver()
    sink = _sink(storage, set())
    data = os.urandom(3 << 20)

    digest, size = await _write(sink, "abc/layer.tar", data, 70_000)

    assert (digest, size) == (Digest.of(data), len(data))
    assert await storage.get_content(staged_path(FOLDER, digest)) == data
    assert await _files(storage, f"{FOLDER}/staging") == []
    assert (sink.written, sink.deduplicated) == (len(data), 0)


async def test_a_declared_blob_that_is_stored_is_compared_not_written() -> None:
    storage = MemoryDriver()
    data = gzip.compress(os.urandom(200_000), mtime=0)
    digest = await _store(storage, data)
    sink = _sink(storage, {digest})

    found = await _write(sink, f"blobs/sha256/{digest.hex}", data, 7000)

    assert found == (digest, len(data))
    assert await _files(storage, f"{FOLDER}/blobs") == []
    assert await _files(storage, f"{FOLDER}/staging") == []
    assert (sink.written, sink.deduplicated) == (0, len(data))
    assert not sink.by_name[f"blobs/sha256/{digest.hex}"].staged


async def test_bytes_that_differ_from_the_stored_blob_are_staged_whole() -> None:
    # An uncompressed layer in an OCI layout is stored; the import recompresses it, so what the
    # sink receives under that name differs from the stored blob after a common prefix.
    storage = MemoryDriver()
    stored = os.urandom(100_000)
    digest = await _store(storage, stored)
    sink = _sink(storage, {digest})
    different = stored[:60_000] + b"!" + os.urandom(50_000)

    found = await _write(sink, f"blobs/sha256/{digest.hex}", different, 7000)

    assert found == (Digest.of(different), len(different))
    assert await storage.get_content(staged_path(FOLDER, found[0])) == different
    assert sink.written == len(different)


async def test_a_prefix_or_an_extension_of_the_stored_blob_is_staged() -> None:
    storage = MemoryDriver()
    stored = os.urandom(50_000)
    digest = await _store(storage, stored)
    for data in (stored[:20_000], stored + b"tail"):
        sink = _sink(storage, {digest})
        found = await _write(sink, f"blobs/sha256/{digest.hex}", data)
        assert found == (Digest.of(data), len(data))
        assert await storage.get_content(staged_path(FOLDER, found[0])) == data


async def test_a_computed_digest_already_stored_drops_the_staged_copy() -> None:
    storage = MemoryDriver()
    data = os.urandom(10_000)
    digest = await _store(storage, data)
    sink = _sink(storage, {digest})

    assert await _write(sink, "x/layer.tar", data) == (digest, len(data))
    assert await _files(storage, f"{FOLDER}/blobs") == []
    assert sink.deduplicated == len(data)


async def test_an_aborted_blob_leaves_nothing() -> None:
    storage = MemoryDriver()
    sink = _sink(storage, set())
    writer = await sink.begin("x/layer.tar")
    await writer.write(os.urandom(2 << 20))
    await writer.abort()
    assert await _files(storage, f"{FOLDER}/staging") == []


async def test_an_import_stages_what_images_use_and_discards_the_rest() -> None:
    storage = MemoryDriver()
    sink = _sink(storage, set())
    archive = tar_bytes(docker_save_old([FakeImage([layer_tar({"a": os.urandom(5000)})])]))

    imported = await import_archive(chunked(archive), sink)
    await sink.discard(imported.unreferenced)

    staged = sorted(await _files(storage, f"{FOLDER}/blobs"))
    assert staged == sorted(staged_path(FOLDER, blob.digest) for blob in imported.blobs.values())
    await sink.remove_all()
    assert await _files(storage, FOLDER) == []


async def test_a_second_import_of_an_oci_archive_writes_nothing() -> None:
    storage = MemoryDriver()
    archive = tar_bytes(oci_multiplatform([FakeImage([layer_tar({"b": os.urandom(4000)})])]))
    first = _sink(storage, set())
    imported = await import_archive(chunked(archive), first)
    stored: set[Digest] = set()
    for blob in imported.blobs.values():  # "commit" them into the blob store
        await storage.move(staged_path(FOLDER, blob.digest), blob_path(blob.digest))
        stored.add(blob.digest)

    second = _sink(storage, stored)
    again = await import_archive(chunked(archive), second)

    assert {b.digest for b in again.blobs.values()} == stored
    assert second.written == 0
    assert await _files(storage, f"{FOLDER}/blobs") == []


# Blobs larger than the sink's buffers, on the filesystem driver (page-aligned buffers go out
# with O_DIRECT, the unaligned tail through the page cache, into the same file).

MiB = 1 << 20


class CountingPool(BufferPool):
    """Counts the buffers handed out and given back."""

    def __init__(self) -> None:
        super().__init__(keep=4)
        self.taken = 0
        self.given = 0

    def take(self) -> mmap.mmap:
        self.taken += 1
        return super().take()

    def give(self, buffer: mmap.mmap) -> None:
        self.given += 1
        super().give(buffer)


def _fs_sink(tmp_path: Path, stored: set[Digest]) -> tuple[FilesystemDriver, RegistrySink, CountingPool]:
    storage = FilesystemDriver(tmp_path / "data")

    async def is_stored(digest: Digest) -> bool:
        return digest in stored

    sink = RegistrySink(storage, FOLDER, is_stored)
    pool = CountingPool()
    sink.buffers = pool
    return storage, sink, pool


def _pieces(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at random places: pieces from 1 byte to more than a buffer."""
    rng = random.Random(seed)
    pieces, pos = [], 0
    while pos < len(data):
        size = rng.choice([1, 511, 4096, 70_000, BUFFER - 3, BUFFER, BUFFER + 5000])
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


async def _stream(writer: BlobWriter, pieces: list[bytes]) -> tuple[Digest, int]:
    for piece in pieces:
        await writer.write(piece)
    found = await writer.finish()
    sink = getattr(writer, "sink", None)
    if isinstance(sink, RegistrySink):
        await sink.flush()  # staged blobs are made durable in the background
    return found


async def _write_pieces(sink: RegistrySink, name: str, pieces: list[bytes]) -> tuple[Digest, int]:
    return await _stream(await sink.begin(name), pieces)


async def _fs_store(storage: FilesystemDriver, data: bytes) -> Digest:
    digest = Digest.of(data)
    await storage.put_content(blob_path(digest), data)
    return digest


async def test_a_large_blob_is_staged_byte_for_byte(tmp_path: Path) -> None:
    storage, sink, pool = _fs_sink(tmp_path, set())
    data = os.urandom(3 * BUFFER + 12_345)

    digest, size = await _write_pieces(sink, "abc/layer.tar", _pieces(data, 1))

    assert (digest, size) == (Digest.of(data), len(data))
    assert await storage.get_content(staged_path(FOLDER, digest)) == data
    assert await _files(storage, f"{FOLDER}/staging") == []
    assert sink.written == len(data)
    assert pool.taken == pool.given


async def test_blobs_of_every_size_around_a_buffer_are_staged_exactly(tmp_path: Path) -> None:
    storage, sink, pool = _fs_sink(tmp_path, set())
    for size in (0, 1, 4095, 4096, BUFFER - 1, BUFFER, BUFFER + 1, 2 * BUFFER):
        data = os.urandom(size)
        digest, written = await _write_pieces(sink, f"{size}/layer.tar", [data])
        assert (digest, written) == (Digest.of(data), size)
        assert await storage.get_content(staged_path(FOLDER, digest)) == data
    assert pool.taken == pool.given


async def test_a_large_stored_blob_is_compared_not_written(tmp_path: Path) -> None:
    storage, sink, pool = _fs_sink(tmp_path, set())
    data = os.urandom(2 * BUFFER + 777)
    digest = await _fs_store(storage, data)
    sink, pool = _fs_sink(tmp_path, {digest})[1:]

    found = await _write_pieces(sink, f"blobs/sha256/{digest.hex}", _pieces(data, 2))

    assert found == (digest, len(data))
    assert await _files(storage, f"{FOLDER}/blobs") == []
    assert await _files(storage, f"{FOLDER}/staging") == []
    assert (sink.written, sink.deduplicated) == (0, len(data))
    assert pool.taken == pool.given


async def test_bytes_that_differ_anywhere_from_a_large_stored_blob_are_staged_exactly(tmp_path: Path) -> None:
    storage, _, _ = _fs_sink(tmp_path, set())
    stored = os.urandom(3 * BUFFER + 100)
    digest = await _fs_store(storage, stored)
    for where in (0, 5000, BUFFER - 1, BUFFER, BUFFER + 1, 2 * BUFFER + 4097, 3 * BUFFER + 99):
        flipped = bytearray(stored)
        flipped[where] ^= 0xFF
        different = bytes(flipped)
        sink, pool = _fs_sink(tmp_path, {digest})[1:]

        found = await _write_pieces(sink, f"blobs/sha256/{digest.hex}", _pieces(different, where))

        assert found == (Digest.of(different), len(different)), where
        assert await storage.get_content(staged_path(FOLDER, found[0])) == different, where
        assert await _files(storage, f"{FOLDER}/staging") == []
        assert pool.taken == pool.given
        await sink.remove_all()
    assert await storage.get_content(blob_path(digest)) == stored


async def test_a_prefix_or_an_extension_of_a_large_stored_blob_is_staged(tmp_path: Path) -> None:
    storage, _, _ = _fs_sink(tmp_path, set())
    stored = os.urandom(2 * BUFFER + 10)
    digest = await _fs_store(storage, stored)
    for data in (stored[:BUFFER], stored[: BUFFER + 3], stored + os.urandom(BUFFER)):
        sink, pool = _fs_sink(tmp_path, {digest})[1:]
        found = await _write_pieces(sink, f"blobs/sha256/{digest.hex}", _pieces(data, len(data)))
        assert found == (Digest.of(data), len(data))
        assert await storage.get_content(staged_path(FOLDER, found[0])) == data
        assert pool.taken == pool.given
        await sink.remove_all()


async def test_stored_bytes_that_are_not_what_their_name_says_are_not_trusted(tmp_path: Path) -> None:
    # The blob store holds other bytes under a digest (corruption): the import's bytes equal
    # them, so comparing finds no difference, but they do not hash to the name: keep them staged.
    storage, _, _ = _fs_sink(tmp_path, set())
    data = os.urandom(BUFFER + 1)
    claimed = Digest.of(b"something else")
    await storage.put_content(blob_path(claimed), data)
    sink, pool = _fs_sink(tmp_path, {claimed})[1:]

    found = await _write_pieces(sink, f"blobs/sha256/{claimed.hex}", [data])

    assert found == (Digest.of(data), len(data))
    assert await storage.get_content(staged_path(FOLDER, found[0])) == data
    assert pool.taken == pool.given


async def test_aborted_large_blobs_leave_nothing_and_give_their_buffers_back(tmp_path: Path) -> None:
    storage, _, _ = _fs_sink(tmp_path, set())
    stored = os.urandom(3 * BUFFER)
    digest = await _fs_store(storage, stored)
    diverging = stored[: BUFFER + 10] + b"x" + stored[BUFFER + 11 :]
    cases = [
        ("x/layer.tar", os.urandom(2 * BUFFER + 5)),
        (f"blobs/sha256/{digest.hex}", stored[: 2 * BUFFER]),
    ]
    cases.append((f"blobs/sha256/{digest.hex}", diverging[: 2 * BUFFER + 1]))
    for name, data in cases:
        sink, pool = _fs_sink(tmp_path, {digest})[1:]
        writer = await sink.begin(name)
        await writer.write(data)
        await writer.abort()
        assert await _files(storage, f"{FOLDER}/staging") == [], name
        assert await _files(storage, f"{FOLDER}/blobs") == [], name
        assert pool.taken == pool.given, name
    assert await storage.get_content(blob_path(digest)) == stored


async def test_two_importers_of_one_session_folder_do_not_share_scratch_files(tmp_path: Path) -> None:
    storage, first, _ = _fs_sink(tmp_path, set())
    second = _fs_sink(tmp_path, set())[1]
    one, two = os.urandom(BUFFER + 100), os.urandom(BUFFER + 200)
    writers = [await first.begin("a/layer.tar"), await second.begin("a/layer.tar")]
    for start in range(0, len(two), 300_000):
        for writer, data in zip(writers, (one, two), strict=True):
            await writer.write(data[start : start + 300_000])

    found = [await writer.finish() for writer in writers]
    await first.flush()
    await second.flush()

    assert found == [(Digest.of(one), len(one)), (Digest.of(two), len(two))]
    assert await storage.get_content(staged_path(FOLDER, found[0][0])) == one
    assert await storage.get_content(staged_path(FOLDER, found[1][0])) == two


class _FullDisk(MemoryDriver):
    """Writers fail once ``room`` bytes were written: a disk that fills up."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    async def writer(self, path: str, append: bool = False) -> MemoryWriter:
        driver = self

        class Full(MemoryWriter):
            async def write(self, data: bytes | bytearray | memoryview) -> None:
                if self.size + len(data) > driver.room:
                    raise OSError(errno.ENOSPC, "No space left on device")
                await super().write(data)

        await super().writer(path, append)
        return Full(self, path, b"")


async def test_a_failed_write_is_reported_and_the_aborted_blob_leaves_nothing() -> None:
    storage = _FullDisk(room=BUFFER + 1)
    sink = _sink(storage, set())
    pool = CountingPool()
    sink.buffers = pool
    writer = await sink.begin("x/layer.tar")

    with pytest.raises(OSError, match="No space left"):
        await _stream(writer, _pieces(os.urandom(3 * BUFFER), 3))
    await writer.abort()

    assert await _files(storage, FOLDER) == []
    assert pool.taken == pool.given


class _SlowDisk(MemoryDriver):
    """Writes wait until ``go`` is set; ``started`` is set when the first one begins."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def writer(self, path: str, append: bool = False) -> MemoryWriter:
        driver = self

        class Slow(MemoryWriter):
            async def write(self, data: bytes | bytearray | memoryview) -> None:
                driver.started.set()
                await driver.go.wait()
                await super().write(data)

        await super().writer(path, append)
        return Slow(self, path, b"")


async def test_a_cancelled_import_waits_for_the_write_in_flight_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = _SlowDisk()
    sink = _sink(storage, set())
    pool = CountingPool()
    sink.buffers = pool
    writer = await sink.begin("x/layer.tar")
    streaming = asyncio.ensure_future(_stream(writer, [os.urandom(3 * BUFFER)]))
    await storage.started.wait()

    streaming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await streaming
    waits = AsyncioSpy("wait")  # how the writer's buffers wait out the work on them
    monkeypatch.setattr(relay, "asyncio", waits)
    aborting = asyncio.ensure_future(writer.abort())
    await waits.reached(unless=aborting)
    assert not aborting.done()  # the buffer being written is not given back under the write
    storage.go.set()
    await aborting

    assert await _files(storage, FOLDER) == []
    assert pool.taken == pool.given
