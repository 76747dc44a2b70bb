"""The storage driver contract (``dockyard.storage.base``), run against every driver.

Each test reads one sentence of a docstring in ``StorageDriver`` / ``FileWriter`` and checks
it. A new driver joins by adding a case to :func:`driver`; nothing else changes.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from dockyard.storage.base import (
    InvalidOffset,
    InvalidPath,
    LocalFile,
    PathNotFound,
    StorageDriver,
)
from dockyard.storage.filesystem import CHUNK, FilesystemDriver
from dockyard.storage.memory import MemoryDriver
from dockyard.storage.s3 import S3Driver
from tests.support.s3 import s3_config

DRIVERS = ["filesystem", "memory", "s3"]


@pytest.fixture(params=DRIVERS)
async def driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageDriver]:
    """Each driver on a fresh store: a new folder, a new memory, a new key prefix in a bucket
    of a real Ceph radosgw (``scripts/ceph.sh``, started once per session)."""
    kind: str = request.param
    if kind == "filesystem":
        yield FilesystemDriver(tmp_path / "root")
    elif kind == "memory":
        yield MemoryDriver()
    elif kind == "s3":
        s3 = S3Driver(s3_config())
        await s3.ensure_bucket()
        yield s3
        await _empty(s3)
    else:
        raise ValueError(kind)


async def _empty(s3: S3Driver) -> None:
    answer = await asyncio.to_thread(s3.client.list_objects_v2, Bucket=s3.bucket, Prefix=s3.config.prefix)
    for item in answer.get("Contents", []):
        await asyncio.to_thread(s3.client.delete_object, Bucket=s3.bucket, Key=item["Key"])


async def read_all(driver: StorageDriver, path: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in driver.reader(path, offset, length)])


def pattern(size: int) -> bytes:
    """Bytes with a prime period, so a chunk boundary (a power of two) never lines up with it
    and an off-by-one in offsets changes the result."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def test_driver_satisfies_the_protocol(driver: StorageDriver) -> None:
    assert isinstance(driver, StorageDriver)
    assert driver.name in DRIVERS


# ---------------------------------------------------------------- get_content / put_content


async def test_put_then_get_returns_the_same_bytes(driver: StorageDriver) -> None:
    data = pattern(10_000)
    await driver.put_content("a/b/c", data)
    assert await driver.get_content("a/b/c") == data


async def test_put_empty_object(driver: StorageDriver) -> None:
    await driver.put_content("empty", b"")
    assert await driver.get_content("empty") == b""
    assert (await driver.stat("empty")).size == 0


async def test_put_replaces_existing_content(driver: StorageDriver) -> None:
    await driver.put_content("obj", b"a much longer first version")
    await driver.put_content("obj", b"short")
    assert await driver.get_content("obj") == b"short"
    assert (await driver.stat("obj")).size == 5


async def test_get_missing_raises_path_not_found(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound) as info:
        await driver.get_content("no/such/object")
    assert info.value.path == "no/such/object"


async def test_get_of_a_folder_raises_path_not_found(driver: StorageDriver) -> None:
    await driver.put_content("folder/child", b"x")
    with pytest.raises(PathNotFound):
        await driver.get_content("folder")


async def test_put_is_atomic_for_a_reader_already_streaming(driver: StorageDriver) -> None:
    """ "Readers see the old content or the new, never a mix": a stream that began before
    the replacement finishes with the old bytes (the object spans several reader chunks)."""
    old = b"o" * (CHUNK + CHUNK // 2)
    new = b"n" * len(old)
    await driver.put_content("swap", old)
    stream = driver.reader("swap")
    first = await anext(stream)
    await driver.put_content("swap", new)
    rest = b"".join([chunk async for chunk in stream])
    assert first + rest == old
    assert await driver.get_content("swap") == new


async def test_put_leaves_no_stray_objects_beside_the_target(driver: StorageDriver) -> None:
    await driver.put_content("dir/one", b"1")
    await driver.put_content("dir/one", b"2")
    assert await driver.list("dir") == ["dir/one"]


# ---------------------------------------------------------------- reader


async def test_reader_streams_the_whole_object_by_default(driver: StorageDriver) -> None:
    data = pattern(2 * CHUNK + 123)
    await driver.put_content("big", data)
    chunks = [chunk async for chunk in driver.reader("big")]
    assert b"".join(chunks) == data
    assert all(chunks), "a reader must not yield empty chunks"


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, slice(0, 1000)),
        (10, 20, slice(10, 30)),
        (999, None, slice(999, 1000)),
        (500, 10_000, slice(500, 1000)),  # length past the end: up to the end
        (0, 0, slice(0, 0)),
        (1000, None, slice(1000, 1000)),  # offset == size: empty, not an error
        (1000, 5, slice(1000, 1000)),
    ],
)
async def test_reader_offset_and_length(
    driver: StorageDriver, offset: int, length: int | None, expected: slice
) -> None:
    data = pattern(1000)
    await driver.put_content("obj", data)
    assert await read_all(driver, "obj", offset, length) == data[expected]


async def test_reader_offset_within_a_later_chunk(driver: StorageDriver) -> None:
    data = pattern(CHUNK + 4096)
    await driver.put_content("obj", data)
    assert await read_all(driver, "obj", CHUNK + 10, 100) == data[CHUNK + 10 : CHUNK + 110]


async def test_reader_offset_past_the_end_raises_invalid_offset(driver: StorageDriver) -> None:
    await driver.put_content("obj", b"12345")
    with pytest.raises(InvalidOffset):
        await read_all(driver, "obj", 6)


async def test_reader_of_a_missing_object_raises_on_first_iteration(driver: StorageDriver) -> None:
    stream = driver.reader("missing/object")  # creating the stream does no I/O
    with pytest.raises(PathNotFound):
        await anext(stream)


async def test_reader_of_a_folder_raises_path_not_found(driver: StorageDriver) -> None:
    await driver.put_content("folder/child", b"x")
    with pytest.raises(PathNotFound):
        await read_all(driver, "folder")


# ---------------------------------------------------------------- writer


async def test_writer_writes_a_new_object(driver: StorageDriver) -> None:
    writer = await driver.writer("new/deep/folder/data")
    assert writer.size == 0
    await writer.write(b"hello ")
    await writer.write(bytearray(b"big "))
    await writer.write(memoryview(b"world"))
    assert writer.size == len(b"hello big world")
    await writer.commit()
    assert await driver.get_content("new/deep/folder/data") == b"hello big world"


async def test_writer_accepts_large_writes(driver: StorageDriver) -> None:
    data = pattern(CHUNK + 100_001)
    writer = await driver.writer("big")
    await writer.write(data)
    await writer.write(data[:10])
    await writer.commit()
    assert writer.size == len(data) + 10
    assert await driver.get_content("big") == data + data[:10]


async def test_writer_keeps_the_order_of_aligned_and_unaligned_writes(driver: StorageDriver) -> None:
    # A page-aligned buffer (the uploads' pooled memory maps) may take a faster path (O_DIRECT
    # on the filesystem); the bytes after it must still follow it, not overwrite the start.
    aligned = mmap.mmap(-1, 1 << 20)
    aligned[:] = pattern(1 << 20)
    writer = await driver.writer("mixed")
    await writer.write(memoryview(aligned))
    await writer.write(b"tail")
    await writer.write(memoryview(aligned))
    await writer.commit()
    assert await driver.get_content("mixed") == aligned[:] + b"tail" + aligned[:]
    aligned.close()


async def test_writer_without_append_replaces_existing_content(driver: StorageDriver) -> None:
    await driver.put_content("obj", b"old content")
    writer = await driver.writer("obj")
    assert writer.size == 0
    await writer.write(b"new")
    await writer.commit()
    assert await driver.get_content("obj") == b"new"


async def test_writer_append_resumes_after_earlier_bytes(driver: StorageDriver) -> None:
    first = await driver.writer("upload/data")
    await first.write(b"abc")
    await first.close()

    resumed = await driver.writer("upload/data", append=True)
    assert resumed.size == 3, "size counts what earlier writers wrote"
    await resumed.write(b"def")
    assert resumed.size == 6
    await resumed.commit()
    assert await driver.get_content("upload/data") == b"abcdef"


async def test_writer_append_to_a_missing_object_starts_empty(driver: StorageDriver) -> None:
    writer = await driver.writer("fresh", append=True)
    assert writer.size == 0
    await writer.write(b"x")
    await writer.commit()
    assert await driver.get_content("fresh") == b"x"


async def test_writer_close_keeps_bytes_for_repeated_resumes(driver: StorageDriver) -> None:
    written = b""
    for piece in (b"one", b"two", b"three"):
        writer = await driver.writer("resume", append=True)
        assert writer.size == len(written)
        await writer.write(piece)
        await writer.close()
        written += piece
    assert await driver.get_content("resume") == b"onetwothree"
    assert (await driver.stat("resume")).size == 11


async def test_writer_append_after_commit(driver: StorageDriver) -> None:
    writer = await driver.writer("obj")
    await writer.write(b"12")
    await writer.commit()
    again = await driver.writer("obj", append=True)
    assert again.size == 2
    await again.write(b"34")
    await again.commit()
    assert await driver.get_content("obj") == b"1234"


async def test_writer_cancel_removes_the_object(driver: StorageDriver) -> None:
    writer = await driver.writer("doomed")
    await writer.write(b"partial")
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await driver.stat("doomed")
    with pytest.raises(PathNotFound):
        await driver.get_content("doomed")


async def test_writer_cancel_after_resume_discards_everything(driver: StorageDriver) -> None:
    first = await driver.writer("doomed")
    await first.write(b"earlier")
    await first.close()
    resumed = await driver.writer("doomed", append=True)
    await resumed.write(b" later")
    await resumed.cancel()
    with pytest.raises(PathNotFound):
        await driver.get_content("doomed")


# ---------------------------------------------------------------- stat


async def test_stat_of_an_object(driver: StorageDriver) -> None:
    before = time.time()
    await driver.put_content("f/obj", b"12345")
    info = await driver.stat("f/obj")
    assert info.path == "f/obj"
    assert info.size == 5
    assert not info.is_dir
    assert before - 5 <= info.modified <= time.time() + 5


async def test_stat_of_a_folder(driver: StorageDriver) -> None:
    """A folder's time is recent when something was just written below it (the GC judges
    orphaned upload folders by it)."""
    before = time.time()
    await driver.put_content("f/sub/obj", b"12345")
    for folder in ("f", "f/sub"):
        info = await driver.stat(folder)
        assert info.is_dir, folder
        assert info.path == folder
        assert before - 5 <= info.modified <= time.time() + 5, folder


async def test_stat_missing_raises_path_not_found(driver: StorageDriver) -> None:
    await driver.put_content("f/obj", b"x")
    for missing in ("nothing", "f/other", "f/obj/below"):
        with pytest.raises(PathNotFound):
            await driver.stat(missing)


# ---------------------------------------------------------------- list


async def test_list_returns_direct_children_only(driver: StorageDriver) -> None:
    for path in ("f/a", "f/b/c", "f/b/d/e", "fx/sibling", "g/x"):
        await driver.put_content(path, b"x")
    assert sorted(await driver.list("f")) == ["f/a", "f/b"]
    assert sorted(await driver.list("f/b")) == ["f/b/c", "f/b/d"]
    assert await driver.list("f/b/d") == ["f/b/d/e"]


async def test_list_of_a_missing_folder_raises_path_not_found(driver: StorageDriver) -> None:
    await driver.put_content("f/a", b"x")
    for missing in ("nothing", "f/none", "f/a"):  # an object is not a folder
        with pytest.raises(PathNotFound):
            await driver.list(missing)


async def test_a_folder_whose_objects_are_all_deleted_no_longer_exists(driver: StorageDriver) -> None:
    """Folders exist only through the objects below them (as in any object store), so
    drivers agree on what an emptied folder is: gone, not an empty listing."""
    await driver.put_content("keep/x", b"x")
    await driver.put_content("keep/f/only", b"x")
    await driver.delete("keep/f/only")
    with pytest.raises(PathNotFound):
        await driver.list("keep/f")
    with pytest.raises(PathNotFound):
        await driver.stat("keep/f")
    assert await driver.list("keep") == ["keep/x"]


# ---------------------------------------------------------------- move


async def test_move_to_a_new_path(driver: StorageDriver) -> None:
    await driver.put_content("uploads/1/data", b"payload")
    await driver.move("uploads/1/data", "blobs/ab/abc/data")
    assert await driver.get_content("blobs/ab/abc/data") == b"payload"
    with pytest.raises(PathNotFound):
        await driver.get_content("uploads/1/data")


async def test_move_replaces_the_destination(driver: StorageDriver) -> None:
    await driver.put_content("src", b"new bytes")
    await driver.put_content("dst", b"old, longer bytes")
    await driver.move("src", "dst")
    assert await driver.get_content("dst") == b"new bytes"
    assert (await driver.stat("dst")).size == len(b"new bytes")
    with pytest.raises(PathNotFound):
        await driver.stat("src")


async def test_move_missing_source_raises_and_keeps_the_destination(driver: StorageDriver) -> None:
    await driver.put_content("dst", b"keep me")
    with pytest.raises(PathNotFound) as info:
        await driver.move("no/such/source", "dst")
    assert info.value.path == "no/such/source"
    assert await driver.get_content("dst") == b"keep me"


async def test_move_to_an_invalid_destination_keeps_the_source(driver: StorageDriver) -> None:
    await driver.put_content("src", b"precious")
    with pytest.raises(InvalidPath):
        await driver.move("src", "../escape")
    assert await driver.get_content("src") == b"precious"


# ---------------------------------------------------------------- delete


async def test_delete_an_object(driver: StorageDriver) -> None:
    await driver.put_content("f/a", b"x")
    await driver.put_content("f/b", b"y")
    await driver.delete("f/a")
    with pytest.raises(PathNotFound):
        await driver.get_content("f/a")
    assert await driver.get_content("f/b") == b"y"


async def test_delete_a_folder_recursively_and_only_its_subpaths(driver: StorageDriver) -> None:
    for path in ("f/a", "f/b/c", "f/b/d/e", "fx/sibling", "g/x"):
        await driver.put_content(path, b"x")
    await driver.delete("f")
    for gone in ("f/a", "f/b/c", "f/b/d/e"):
        with pytest.raises(PathNotFound):
            await driver.stat(gone)
    with pytest.raises(PathNotFound):
        await driver.list("f")
    assert await driver.get_content("fx/sibling") == b"x"
    assert await driver.get_content("g/x") == b"x"


async def test_delete_missing_raises_path_not_found(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        await driver.delete("no/such/thing")


async def test_delete_twice_raises_the_second_time(driver: StorageDriver) -> None:
    await driver.put_content("once", b"x")
    await driver.delete("once")
    with pytest.raises(PathNotFound):
        await driver.delete("once")


# ---------------------------------------------------------------- paths below an object


async def _stat(d: StorageDriver, p: str) -> object:
    return await d.stat(p)


async def _get(d: StorageDriver, p: str) -> object:
    return await d.get_content(p)


async def _read(d: StorageDriver, p: str) -> object:
    return await read_all(d, p)


async def _list(d: StorageDriver, p: str) -> object:
    return await d.list(p)


async def _move_from(d: StorageDriver, p: str) -> object:
    await d.move(p, "elsewhere")
    return None


async def _delete(d: StorageDriver, p: str) -> object:
    await d.delete(p)
    return None


async def _local(d: StorageDriver, p: str) -> object:
    return await d.local_file(p)


MISSING_OPERATIONS: dict[str, Callable[[StorageDriver, str], Awaitable[object]]] = {
    "stat": _stat,
    "get_content": _get,
    "reader": _read,
    "list": _list,
    "move": _move_from,
    "delete": _delete,
    "local_file": _local,
}


@pytest.mark.parametrize("operation", sorted(MISSING_OPERATIONS))
async def test_a_path_below_an_object_is_missing(driver: StorageDriver, operation: str) -> None:
    """``a/b`` when ``a`` is an object does not exist: ``PathNotFound``, not an OS error."""
    await driver.put_content("a", b"an object, not a folder")
    with pytest.raises(PathNotFound):
        await MISSING_OPERATIONS[operation](driver, "a/b")


# ---------------------------------------------------------------- redirect_url / local_file


async def test_redirect_url_is_none(driver: StorageDriver) -> None:
    """By default no driver hands out URLs: the registry serves the bytes itself (the S3
    driver's presigned redirects are a setting, off unless chosen)."""
    await driver.put_content("obj", b"x")
    assert await driver.redirect_url("obj") is None
    assert await driver.redirect_url("obj", "HEAD") is None


async def test_local_file(driver: StorageDriver) -> None:
    data = pattern(3000)
    await driver.put_content("f/obj", data)
    local = await driver.local_file("f/obj")
    if driver.name in ("memory", "s3"):
        assert local is None
        return
    assert isinstance(local, LocalFile)
    assert local.size == len(data)
    assert os.path.isabs(local.path)
    assert await asyncio.to_thread(Path(local.path).read_bytes) == data


async def test_local_file_missing_raises_path_not_found(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        await driver.local_file("no/such/object")


async def test_local_file_of_a_folder_raises_path_not_found(driver: StorageDriver) -> None:
    await driver.put_content("folder/child", b"x")
    with pytest.raises(PathNotFound):
        await driver.local_file("folder")


# ---------------------------------------------------------------- invalid paths

INVALID_PATHS = [
    pytest.param("", id="empty"),
    pytest.param("/abs/path", id="absolute"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a//b", id="empty-component"),
    pytest.param("..", id="dotdot"),
    pytest.param("a/../b", id="dotdot-inside"),
    pytest.param("a/..", id="dotdot-last"),
    pytest.param("./a", id="dot"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a\x00b", id="nul"),
]


async def _op_put(d: StorageDriver, p: str) -> None:
    await d.put_content(p, b"x")


async def _op_writer(d: StorageDriver, p: str) -> None:
    writer = await d.writer(p)
    await writer.cancel()


async def _op_writer_append(d: StorageDriver, p: str) -> None:
    writer = await d.writer(p, append=True)
    await writer.cancel()


async def _op_move_source(d: StorageDriver, p: str) -> None:
    await d.move(p, "valid/dest")


async def _op_move_dest(d: StorageDriver, p: str) -> None:
    await d.move("valid/source", p)


async def _op_redirect(d: StorageDriver, p: str) -> None:
    await d.redirect_url(p)


INVALID_OPERATIONS: dict[str, Callable[[StorageDriver, str], Awaitable[object]]] = {
    **MISSING_OPERATIONS,
    "put_content": _op_put,
    "writer": _op_writer,
    "writer-append": _op_writer_append,
    "move-source": _op_move_source,
    "move-dest": _op_move_dest,
    "redirect_url": _op_redirect,
}


@pytest.mark.parametrize("operation", sorted(INVALID_OPERATIONS))
async def test_invalid_paths_are_rejected(driver: StorageDriver, operation: str) -> None:
    """Every method rejects every malformed path with ``InvalidPath`` (and changes nothing)."""
    await driver.put_content("valid/source", b"x")
    accepted: list[str] = []
    for param in INVALID_PATHS:
        path = str(param.values[0])
        try:
            await INVALID_OPERATIONS[operation](driver, path)
        except InvalidPath as exc:
            if exc.path != path:
                accepted.append(f"{path!r} (reported as {exc.path!r})")
        else:
            accepted.append(path)
        assert await driver.get_content("valid/source") == b"x", f"{operation}({path!r}) lost the source"
    assert accepted == [], f"{operation} accepted invalid paths {accepted}"


async def test_invalid_paths_never_touch_anything_outside_the_store(tmp_path: Path) -> None:
    """The filesystem driver must not write through ``..`` next to its root."""
    driver = FilesystemDriver(tmp_path / "root")
    with pytest.raises(InvalidPath):
        await driver.put_content("../outside", b"x")
    with pytest.raises(InvalidPath):
        await driver.writer("../outside2")
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["root"]


async def test_valid_unusual_paths_are_accepted(driver: StorageDriver) -> None:
    for path in ("a", "a.b/c-d_e", "x/...", "x/.hidden", "x/..a"):
        await driver.put_content(path, path.encode())
        assert await driver.get_content(path) == path.encode()


# ---------------------------------------------------------------- filesystem only


async def test_filesystem_purge_temporaries(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path / "root")
    await driver.put_content("blobs/sha256/ab/data", b"real")
    await driver.put_content("uploads/1/data", b"session")
    # What a crash in the middle of put_content leaves behind:
    (driver.root / "blobs" / "sha256" / "ab" / ".tmp-0123abcd").write_bytes(b"half")
    (driver.root / ".tmp-top").write_bytes(b"half")
    (driver.root / "uploads" / "1" / ".tmp-x").write_bytes(b"")

    assert sorted(await driver.list("blobs/sha256/ab")) == ["blobs/sha256/ab/data"], "temporaries are hidden"
    assert driver.purge_temporaries() == 3
    assert driver.purge_temporaries() == 0
    leftovers = sorted(str(p.relative_to(driver.root)) for p in driver.root.rglob("*") if p.is_file())
    assert leftovers == ["blobs/sha256/ab/data", "uploads/1/data"]
    assert await driver.get_content("blobs/sha256/ab/data") == b"real"


async def test_filesystem_objects_survive_a_new_driver_on_the_same_root(tmp_path: Path) -> None:
    first = FilesystemDriver(tmp_path / "root")
    writer = await first.writer("uploads/u/data")
    await writer.write(b"before restart")
    await writer.close()
    second = FilesystemDriver(tmp_path / "root")
    resumed = await second.writer("uploads/u/data", append=True)
    assert resumed.size == len(b"before restart")
    await resumed.write(b", after")
    await resumed.commit()
    assert await first.get_content("uploads/u/data") == b"before restart, after"


# ---------------------------------------------------------------- where object stores differ
# S3 has no rename (``move`` is a copy plus a delete), writes land in parts, listings may lag on
# some servers, and one driver is shared by the event loops of several threads. These hold on
# every driver.

LARGE = 6 * 1024 * 1024 + 7  # above S3's smallest part (5 MiB) and the reader's chunk


async def test_move_of_a_large_object_copies_it_whole(driver: StorageDriver) -> None:
    data = pattern(2 * LARGE)
    writer = await driver.writer("uploads/big/data")
    for start in range(0, len(data), 1_000_003):
        await writer.write(data[start : start + 1_000_003])
    await writer.commit()
    await driver.move("uploads/big/data", "blobs/big")
    assert await read_all(driver, "blobs/big") == data
    assert (await driver.stat("blobs/big")).size == len(data)
    with pytest.raises(PathNotFound):
        await driver.stat("uploads/big/data")
    with pytest.raises(PathNotFound):
        await driver.list("uploads/big")


async def test_writer_resumes_a_large_object(driver: StorageDriver) -> None:
    """A resumed upload keeps every byte written before, however many parts they filled."""
    first, second = pattern(LARGE), pattern(LARGE + 11)[::-1]
    writer = await driver.writer("uploads/u/data")
    await writer.write(first)
    await writer.close()
    assert (await driver.stat("uploads/u/data")).size == len(first)
    resumed = await driver.writer("uploads/u/data", append=True)
    assert resumed.size == len(first)
    await resumed.write(second[:100])
    await resumed.write(second[100:])
    await resumed.commit()
    assert await read_all(driver, "uploads/u/data") == first + second
    assert (
        await read_all(driver, "uploads/u/data", len(first) - 5, 10)
        == (first + second)[len(first) - 5 :][:10]
    )


async def test_reads_follow_writes_and_deletes_at_once(driver: StorageDriver) -> None:
    """Listings may lag behind writes on some object stores; ``stat`` and reads of one path may
    not: an object is readable as soon as its write returns and gone once its delete returns."""
    for round_ in range(3):
        content = f"version {round_}".encode()
        await driver.put_content("rw/obj", content)
        assert (await driver.stat("rw/obj")).size == len(content)
        assert await driver.get_content("rw/obj") == content
        await driver.delete("rw/obj")
        with pytest.raises(PathNotFound):
            await driver.stat("rw/obj")
        with pytest.raises(PathNotFound):
            await driver.get_content("rw/obj")


def test_one_driver_serves_several_event_loops(driver: StorageDriver) -> None:
    """Servers run a loop per thread (and tests a loop per test): one driver instance must work
    from all of them, also at the same time."""
    errors: list[BaseException] = []

    async def work(name: str) -> None:
        data = pattern(LARGE) + name.encode()
        writer = await driver.writer(f"loops/{name}")
        await writer.write(data)
        await writer.commit()
        await driver.move(f"loops/{name}", f"loops/done-{name}")
        assert await read_all(driver, f"loops/done-{name}") == data

    def thread(name: str) -> None:
        try:
            asyncio.run(work(name))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(f"t{i}",)) for i in range(3)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    assert errors == []
    asyncio.run(work("after"))

    async def listing() -> list[str]:
        return await driver.list("loops")

    assert asyncio.run(listing()) == ["loops/done-after", "loops/done-t0", "loops/done-t1", "loops/done-t2"]
