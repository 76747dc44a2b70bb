"""Resuming an import between two tar entries: a new importer, given the state taken at a
boundary and the archive's bytes from there on, ends where a straight import ends."""

from __future__ import annotations

import os
import tarfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from dockyard.archive.decompress import Compression
from dockyard.archive.errors import UnsafeArchive
from dockyard.archive.ingest import ArchiveImport, ImportOptions, ImportState, import_archive
from dockyard.archive.safe_tar import BLOCK, ReaderState, SafeTarReader
from tests.unit.archive.factories import (
    FakeImage,
    Member,
    MemorySink,
    chunked,
    docker_save_old,
    file,
    gz,
    info,
    layer_tar,
    oci_multiplatform,
    tar_bytes,
)

BIG = layer_tar({"opt/data": os.urandom(200_000), "opt/zeros": bytes(300_000)})
SMALL = layer_tar({"etc/motd": b"hi\n"})
ODD = (1, 511, 513, 4099, 65_537, 3)


async def odd_pieces(data: bytes) -> AsyncIterator[bytes]:
    """``data`` in pieces of odd sizes, none aligned to a tar block."""
    start, n = 0, 0
    while start < len(data):
        size = ODD[n % len(ODD)]
        yield data[start : start + size]
        start += size
        n += 1


@dataclass(frozen=True)
class Boundary:
    offset: int
    state: ImportState
    sink: dict[str, bytes]  # what the sink held at that point


async def straight(
    data: bytes, options: ImportOptions | None = None
) -> tuple[ArchiveImport, MemorySink, list[Boundary]]:
    sink = MemorySink()
    boundaries: list[Boundary] = []

    def on_boundary(offset: int, take: Callable[[], ImportState]) -> None:
        boundaries.append(Boundary(offset, take(), dict(sink.blobs)))

    result = await import_archive(chunked(data, 7000), sink, options, on_boundary=on_boundary)
    return result, sink, boundaries


async def resumed(
    data: bytes, at: Boundary, options: ImportOptions | None = None
) -> tuple[ArchiveImport, MemorySink]:
    sink = MemorySink()
    sink.blobs = dict(at.sink)  # MemorySink refuses a blob written twice: nothing before is redone
    result = await import_archive(odd_pieces(data[at.offset :]), sink, options, resume=at.state)
    return result, sink


ARCHIVES: dict[str, list[Member]] = {
    # docker < 25: directories, small kept files, uncompressed layers compressed on import,
    # a symlink to a layer that came earlier
    "docker-save": docker_save_old([FakeImage([BIG, SMALL, BIG], ["example/app:1.0"])]),
    # OCI layout: content-addressed gzip blobs, an index of two platforms
    "oci-layout": oci_multiplatform(
        [FakeImage([BIG]), FakeImage([BIG, SMALL], [], architecture="arm64", variant="v8")]
    ),
}


@pytest.mark.parametrize("kind", list(ARCHIVES))
async def test_an_import_resumed_at_any_boundary_ends_like_a_straight_one(kind: str) -> None:
    data = tar_bytes(ARCHIVES[kind])
    expected, expected_sink, boundaries = await straight(data)

    offsets = [b.offset for b in boundaries]
    assert len(boundaries) == len(ARCHIVES[kind])  # one after every entry
    assert offsets == sorted(set(offsets))
    assert all(b.offset == b.state.offset and b.offset % BLOCK == 0 for b in boundaries)
    assert data[offsets[-1] :].strip(b"\0") == b""  # the last one is right before the end marker

    picks = {"first": boundaries[0], "middle": boundaries[len(boundaries) // 2], "last": boundaries[-1]}
    for where, at in [*picks.items(), *((f"#{n}", b) for n, b in enumerate(boundaries))]:
        result, sink = await resumed(data, at)
        assert result == expected, where
        assert result.description == expected.description, where
        assert sink.blobs == expected_sink.blobs, where
        assert sink.aborted == [], where


async def test_an_uncompressed_layer_kept_as_it_is_resumes_too() -> None:
    options = ImportOptions(layer_compression=Compression.NONE)
    data = tar_bytes(docker_save_old([FakeImage([BIG, SMALL])]))
    expected, expected_sink, boundaries = await straight(data, options)
    at = boundaries[len(boundaries) // 2]
    result, sink = await resumed(data, at, options)
    assert result == expected
    assert sink.blobs == expected_sink.blobs


async def test_a_state_is_not_changed_by_the_import_going_on() -> None:
    data = tar_bytes(ARCHIVES["docker-save"])
    _, _, boundaries = await straight(data)
    first = boundaries[0].state
    assert first.reader.entries == 1
    assert list(first.reader.kinds) == [ARCHIVES["docker-save"][0][0].name.rstrip("/")]
    assert first.stored == {}


def read_states(data: bytes) -> tuple[SafeTarReader, list[ReaderState]]:
    states: list[ReaderState] = []
    reader: SafeTarReader

    def on_boundary(offset: int) -> None:
        state = reader.state()
        assert state.offset == offset
        states.append(state)

    reader = SafeTarReader(chunked(data, 1000), on_boundary=on_boundary)
    return reader, states


async def names(reader: SafeTarReader) -> list[str]:
    return [entry.name async for entry in reader]


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ([file("a", b"1"), file("b", b"2"), file("a", b"3")], "duplicate entry in the archive: a"),
        ([file("./a", b"1"), file("b", b"2"), file("a", b"3")], "duplicate entry in the archive: a"),
        (
            [file("d/x", b"1"), file("b", b"2"), file("d", b"3")],
            "d is used both as a directory and as a file",
        ),
        ([file("f", b"1"), file("b", b"2"), file("f/g", b"3")], "f/g is inside f, which is a file"),
    ],
    ids=["duplicate", "duplicate-normalised", "file-over-directory", "inside-a-file"],
)
async def test_the_state_carries_what_came_before_the_resume_point(members: list[Member], error: str) -> None:
    data = tar_bytes(members)
    reader, states = read_states(data)
    with pytest.raises(UnsafeArchive):
        await names(reader)
    after_first = states[0]
    assert after_first.entries >= 1

    # The rest alone looks harmless: only what the state remembers refuses it.
    rest = data[after_first.offset :]
    assert len(await names(SafeTarReader(chunked(rest)))) == 2
    resumed_reader = SafeTarReader(odd_pieces(rest), resume=after_first)
    with pytest.raises(UnsafeArchive, match=error):
        await names(resumed_reader)


async def test_links_may_point_at_files_before_the_resume_point() -> None:
    members: list[Member] = [
        file("dir/target", b"content"),
        file("other", b"x"),
        (info("hard", kind=tarfile.LNKTYPE, linkname="dir/target"), None),
        (info("dir/soft", kind=tarfile.SYMTYPE, linkname="target"), None),
    ]
    data = tar_bytes(members)
    reader, states = read_states(data)
    assert await names(reader) == ["dir/target", "other", "hard", "dir/soft"]
    resumed_reader = SafeTarReader(odd_pieces(data[states[0].offset :]), resume=states[0])
    assert await names(resumed_reader) == ["other", "hard", "dir/soft"]
    assert resumed_reader.links == reader.links == {"hard": "dir/target", "dir/soft": "dir/target"}
    assert resumed_reader.files() == reader.files() == ["dir/target", "other"]

    dangling = tar_bytes([file("a", b"1"), (info("s", kind=tarfile.SYMTYPE, linkname="gone"), None)])
    reader, states = read_states(dangling)
    with pytest.raises(UnsafeArchive, match="does not exist"):
        await names(reader)
    with pytest.raises(UnsafeArchive, match="does not exist"):
        await names(SafeTarReader(odd_pieces(dangling[states[0].offset :]), resume=states[0]))


async def test_a_compressed_archive_offers_no_boundary() -> None:
    data = gz(tar_bytes(ARCHIVES["docker-save"]))
    calls: list[int] = []
    result = await import_archive(
        chunked(data), MemorySink(), on_boundary=lambda offset, take: calls.append(offset)
    )
    assert result.compression is Compression.GZIP
    assert result.description.images  # the import itself went through
    assert calls == []

    reader = SafeTarReader(chunked(data), on_boundary=calls.append)
    async for _ in reader:
        assert not reader.resumable
    assert calls == []
    with pytest.raises(RuntimeError):
        reader.state()


async def test_state_is_refused_outside_a_boundary() -> None:
    data = tar_bytes([file("a", b"1" * 1000), file("b", b"2")])
    reader = SafeTarReader(chunked(data, 100))
    with pytest.raises(RuntimeError):
        reader.state()  # nothing read yet: the compression is not even known
    async for entry in reader:
        with pytest.raises(RuntimeError):
            reader.state()  # an entry is current
        async for _ in entry.chunks():
            with pytest.raises(RuntimeError):
                reader.state()  # in the middle of its content
    assert reader.resumable
