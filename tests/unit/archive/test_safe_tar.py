from __future__ import annotations

import io
import tarfile

import pytest

from dockyard.archive.decompress import Compression
from dockyard.archive.errors import ArchiveError, InvalidArchive, UnsafeArchive
from dockyard.archive.safe_tar import (
    EntryKind,
    LinkPolicy,
    SafeTarReader,
    TarLimits,
    looks_like_tar,
)
from dockyard.archive.tarheader import parse_pax
from tests.unit.archive.factories import Member, chunked, file, gz, info, tar_bytes, zst

Read = list[tuple[str, EntryKind, bytes, str | None]]


async def read_all(data: bytes, limits: TarLimits | None = None, chunk: int = 7000) -> Read:
    reader = SafeTarReader(chunked(data, chunk), limits)
    out: Read = []
    async for entry in reader:
        content = b"".join([c async for c in entry.chunks()])
        out.append((entry.name, entry.kind, content, entry.link_target))
    return out


SAMPLE: list[Member] = [
    (info("dir/", kind=tarfile.DIRTYPE), None),
    file("./dir/a.txt", b"alpha" * 300),
    file("b.bin", bytes(range(256)) * 50),
    file("empty", b""),
]


@pytest.mark.parametrize("compress", [None, gz, zst], ids=["plain", "gzip", "zstd"])
@pytest.mark.parametrize("chunk", [1, 511, 7000, 1 << 20])
async def test_reads_entries_in_order(compress: object, chunk: int) -> None:
    data = tar_bytes(SAMPLE)
    if callable(compress):
        data = compress(data)
    got = await read_all(data, chunk=chunk)
    assert got == [
        ("dir", EntryKind.DIRECTORY, b"", None),
        ("dir/a.txt", EntryKind.FILE, b"alpha" * 300, None),
        ("b.bin", EntryKind.FILE, bytes(range(256)) * 50, None),
        ("empty", EntryKind.FILE, b"", None),
    ]


@pytest.mark.parametrize(("compress", "kind"), [(gz, Compression.GZIP), (zst, Compression.ZSTD)])
async def test_reports_outer_compression(compress: object, kind: Compression) -> None:
    assert callable(compress)
    reader = SafeTarReader(chunked(compress(tar_bytes(SAMPLE))))
    async for _ in reader:
        pass
    assert reader.compression is kind


async def test_unread_content_is_skipped() -> None:
    reader = SafeTarReader(chunked(tar_bytes(SAMPLE)))
    assert [e.name async for e in reader] == ["dir", "dir/a.txt", "b.bin", "empty"]


async def test_long_names_pax_and_gnu() -> None:
    name = "d/" + "x" * 300
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        got = await read_all(tar_bytes([file(name, b"1")], fmt))
        assert got == [(name, EntryKind.FILE, b"1", None)]


async def test_gnu_base256_size_is_read() -> None:
    block = bytearray(tar_bytes([file("f", b"z" * 10)])[:512])
    block[124:136] = b"\x80" + (10).to_bytes(11, "big")
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    data = bytes(block) + b"z" * 10 + bytes(502) + bytes(1024)
    assert await read_all(data) == [("f", EntryKind.FILE, b"z" * 10, None)]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        pytest.param([file("../evil", b"x")], "path traversal", id="dotdot"),
        pytest.param([file("a/../../evil", b"x")], "path traversal", id="dotdot-inner"),
        pytest.param([file("/etc/passwd", b"x")], "absolute path", id="absolute"),
        pytest.param([file("a\\..\\b", b"x")], "backslash", id="backslash"),
        pytest.param([(info("dev", kind=tarfile.CHRTYPE), None)], "character device", id="chardev"),
        pytest.param([(info("dev", kind=tarfile.BLKTYPE), None)], "block device", id="blockdev"),
        pytest.param([(info("fifo", kind=tarfile.FIFOTYPE), None)], "FIFO", id="fifo"),
        pytest.param([file("a", b"1"), file("a", b"2")], "duplicate entry", id="duplicate"),
        pytest.param([file("a", b"1"), file("./a", b"2")], "duplicate entry", id="duplicate-normalised"),
        pytest.param([file("a", b"1"), file("a/b", b"2")], "not a directory", id="file-as-dir"),
        pytest.param([file("a/b", b"1"), file("a", b"2")], "both as a directory", id="dir-as-file"),
        pytest.param(
            [(info("l", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
            "points outside",
            id="symlink-abs",
        ),
        pytest.param(
            [(info("d/l", kind=tarfile.SYMTYPE, linkname="../../x"), None)], "points outside", id="symlink-up"
        ),
        pytest.param(
            [(info("l", kind=tarfile.SYMTYPE, linkname="missing"), None)],
            "does not exist",
            id="symlink-dangling",
        ),
        pytest.param(
            [(info("d/", kind=tarfile.DIRTYPE), None), (info("l", kind=tarfile.SYMTYPE, linkname="d"), None)],
            "is a directory",
            id="symlink-to-dir",
        ),
        pytest.param(
            [
                file("t", b"1"),
                (info("l1", kind=tarfile.SYMTYPE, linkname="t"), None),
                (info("l2", kind=tarfile.SYMTYPE, linkname="l1"), None),
            ],
            "is a symlink",
            id="symlink-chain",
        ),
        pytest.param(
            [(info("l", kind=tarfile.SYMTYPE, linkname="."), None), file("l/x", b"1")],
            "points outside",
            id="symlink-root",
        ),
        pytest.param(
            [file("t", b"1"), (info("l", kind=tarfile.SYMTYPE, linkname="t"), None), file("l/x", b"1")],
            "which is a symlink",
            id="path-through-symlink",
        ),
        pytest.param(
            [(info("h", kind=tarfile.LNKTYPE, linkname="../etc/passwd"), None)],
            "points outside",
            id="hardlink-up",
        ),
        pytest.param(
            [(info("h", kind=tarfile.LNKTYPE, linkname="/etc/passwd"), None)],
            "points outside",
            id="hardlink-abs",
        ),
        pytest.param(
            [(info("h", kind=tarfile.LNKTYPE, linkname="later"), None)], "earlier regular", id="hardlink-fwd"
        ),
    ],
)
async def test_refuses_unsafe_entries(members: list[Member], message: str) -> None:
    with pytest.raises(UnsafeArchive, match=message):
        await read_all(tar_bytes(members))


async def test_links_inside_are_allowed_and_resolved() -> None:
    members = [
        file("1/layer.tar", b"L"),
        (info("2/layer.tar", kind=tarfile.SYMTYPE, linkname="../1/layer.tar"), None),
        (info("3/layer.tar", kind=tarfile.LNKTYPE, linkname="1/layer.tar"), None),
        (info("4/layer.tar", kind=tarfile.SYMTYPE, linkname="../5/layer.tar"), None),  # target comes later
        file("5/layer.tar", b"M"),
    ]
    reader = SafeTarReader(chunked(tar_bytes(members)))
    kinds = [(e.name, e.kind) async for e in reader]
    assert kinds[1] == ("2/layer.tar", EntryKind.SYMLINK)
    assert reader.links == {
        "2/layer.tar": "1/layer.tar",
        "3/layer.tar": "1/layer.tar",
        "4/layer.tar": "5/layer.tar",
    }
    assert sorted(reader.files()) == ["1/layer.tar", "5/layer.tar"]


async def test_links_can_be_refused() -> None:
    members = [file("t", b"1"), (info("l", kind=tarfile.SYMTYPE, linkname="t"), None)]
    with pytest.raises(UnsafeArchive, match="links are not allowed"):
        await read_all(tar_bytes(members), TarLimits(links=LinkPolicy.REFUSE))


async def test_refuses_long_names() -> None:
    with pytest.raises(UnsafeArchive, match="above the limit of 64"):
        await read_all(tar_bytes([file("n" * 65, b"")]), TarLimits(max_name_length=64))
    assert await read_all(tar_bytes([file("n" * 64, b"")]), TarLimits(max_name_length=64))


async def test_refuses_too_many_entries() -> None:
    members = [file(f"f{i}", b"") for i in range(11)]
    with pytest.raises(UnsafeArchive, match="more than 10 entries"):
        await read_all(tar_bytes(members), TarLimits(max_entries=10))


async def test_refuses_oversize_archive_by_declared_size() -> None:
    with pytest.raises(UnsafeArchive, match="declares 100000 bytes"):
        await read_all(tar_bytes([file("big", bytes(100_000))]), TarLimits(max_total_size=50_000))


async def test_refuses_oversize_archive_while_streaming() -> None:
    members = [file(f"f{i}", bytes(10_000)) for i in range(10)]
    with pytest.raises(UnsafeArchive, match="larger than the limit"):
        await read_all(gz(tar_bytes(members)), TarLimits(max_total_size=50_000))


@pytest.mark.parametrize("compress", [gz, zst], ids=["gzip", "zstd"])
async def test_refuses_decompression_bomb_while_streaming(compress: object) -> None:
    assert callable(compress)
    bomb = compress(tar_bytes([file("zeros", bytes(64 << 20))]))
    limits = TarLimits(max_ratio=100, ratio_grace=4 << 20)
    reader = SafeTarReader(chunked(bomb, 1 << 20), limits)

    async def drain() -> None:
        async for entry in reader:
            async for _ in entry.chunks():
                pass

    with pytest.raises(UnsafeArchive, match="decompression bomb"):
        await drain()
    # Stopped early: far less than the 64 MiB inside was decompressed.
    assert reader.input.bytes_out < 16 << 20


async def test_high_ratio_below_grace_is_accepted() -> None:
    data = gz(tar_bytes([file("zeros", bytes(2 << 20))]))
    got = await read_all(data, TarLimits(max_ratio=10, ratio_grace=4 << 20))
    assert got[0][2] == bytes(2 << 20)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        pytest.param(tar_bytes(SAMPLE)[:3000], InvalidArchive, "truncated", id="truncated-tar"),
        pytest.param(gz(tar_bytes(SAMPLE))[:-20], InvalidArchive, "truncated", id="truncated-gzip"),
        pytest.param(zst(tar_bytes(SAMPLE))[:-20], InvalidArchive, "truncated", id="truncated-zstd"),
        pytest.param(b"not a tar" * 100, InvalidArchive, "checksum", id="garbage"),
        pytest.param(tar_bytes(SAMPLE) + b"\x01" * 600, UnsafeArchive, "after the end", id="trailing-data"),
        pytest.param(b"\xfd7zXZ\x00" + bytes(600), InvalidArchive, "xz", id="xz"),
        pytest.param(gz(tar_bytes(SAMPLE)) + b"junk", InvalidArchive, "gzip", id="gzip-trailing-junk"),
        pytest.param(b"", InvalidArchive, "truncated", id="empty"),
    ],
)
async def test_refuses_broken_archives(data: bytes, error: type[ArchiveError], message: str) -> None:
    with pytest.raises(error, match=message):
        await read_all(data)


async def test_trailing_zero_padding_is_fine() -> None:
    assert len(await read_all(gz(tar_bytes(SAMPLE) + bytes(20_000)) + bytes(100))) == 4


async def test_concatenated_gzip_members() -> None:
    data = tar_bytes(SAMPLE)
    got = await read_all(gz(data[:5000]) + gz(data[5000:]))
    assert [name for name, *_ in got] == ["dir", "dir/a.txt", "b.bin", "empty"]


async def test_refuses_sparse_files() -> None:
    sparse = info("s")
    sparse.pax_headers = {"GNU.sparse.size": "10"}
    with pytest.raises(UnsafeArchive, match="sparse"):
        await read_all(tar_bytes([(sparse, b"")]))


@pytest.mark.parametrize("size", ["\u00b2", "1" * 5000, "9" * 19, "-1", "+1", " 1", "1e3", ""], ids=repr)
async def test_refuses_a_pax_size_that_is_not_a_plain_number(size: str) -> None:
    # Unicode digits pass str.isdigit, and int() refuses more than 4,300 digits: both were a crash.
    sized = info("f", 1)
    sized.pax_headers = {"size": size}
    with pytest.raises(InvalidArchive, match="invalid pax size"):
        await read_all(tar_bytes([(sized, b"1")]))


@pytest.mark.parametrize("length", [b"1" * 5000, b"9" * 19], ids=["5000-digits", "19-digits"])
def test_refuses_a_pax_record_length_that_is_not_a_small_number(length: bytes) -> None:
    with pytest.raises(InvalidArchive, match="record length"):
        parse_pax(length + b" path=x\n")


async def test_refuses_a_global_pax_path() -> None:
    out = io.BytesIO()
    with tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"path": "/etc/x"}
    ) as tar:
        tar.addfile(info("a", 1), io.BytesIO(b"1"))
    with pytest.raises(UnsafeArchive, match="global pax"):
        await read_all(out.getvalue())


async def test_content_must_be_read_in_order() -> None:
    reader = SafeTarReader(chunked(tar_bytes(SAMPLE)))
    entries = aiter(reader)
    await anext(entries)
    second = await anext(entries)
    await anext(entries)
    with pytest.raises(RuntimeError, match="no longer the current entry"):
        await anext(aiter(second.chunks()))


async def test_entry_read_refuses_oversize_content() -> None:
    reader = SafeTarReader(chunked(tar_bytes([file("f", b"x" * 100)])))
    async for entry in reader:
        with pytest.raises(UnsafeArchive, match="at most 10"):
            await entry.read(10)


def test_looks_like_tar() -> None:
    assert looks_like_tar(tar_bytes(SAMPLE))
    assert looks_like_tar(bytes(1024))
    assert not looks_like_tar(b"{" + bytes(600))
    assert not looks_like_tar(b"short")
