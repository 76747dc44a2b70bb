"""The Berkeley DB rpm database reader on genuine files: headers made by Debian's rpm tools,
loaded into a hash database by Berkeley DB's own db5.3_load (tests/support/package_dbs.py), and
cross-checked with what rpm itself lists of them; then the same files damaged."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.archive import rpm_bdb
from dockyard.archive.packages import Package
from dockyard.archive.rpm_bdb import parse_rpmdb_bdb
from dockyard.archive.rpmdb import RpmFormatError
from tests.support.package_dbs import make_rpmdb, make_rpmdb_bdb, rpm_headers, rpm_query_bdb

PACKAGES = [
    ("dockyard-tiny", 2, "1.2.3", "4.fc40"),
    ("zlib-ng", 0, "2.1.6", "1"),
    ("bash", 0, "4.2.46", "34.el7"),
]
EXPECTED = [
    Package("rpm", "bash", "4.2.46-34.el7"),
    Package("rpm", "dockyard-tiny", "2:1.2.3-4.fc40"),
    Package("rpm", "zlib-ng", "2.1.6-1"),  # epoch 0 is not written
]
COPIES = 150  # keys holding the same headers again: many hash pages, split buckets


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    work = tmp_path_factory.mktemp("rpm")
    return rpm_headers(work, make_rpmdb(work, PACKAGES))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bdb")


@pytest.fixture(scope="module")
def small_pages(headers: list[bytes], work: Path) -> bytes:
    """512-byte pages: every header (over 1 KB) is a chain of overflow pages."""
    return (make_rpmdb_bdb(work, headers, pagesize=512) / "Packages").read_bytes()


def _as_rpm_lists(packages: list[Package]) -> list[str]:
    return sorted(f"{p.name} {p.version}" for p in packages)


def _rpm_listed(folder: Path) -> list[str]:
    """rpm's ``NAME EPOCH VERSION-RELEASE`` lines written as Dockyard writes versions."""
    lines = []
    for line in rpm_query_bdb(folder):
        name, epoch, version = line.split(" ")
        lines.append(f"{name} {version}" if epoch in ("(none)", "0") else f"{name} {epoch}:{version}")
    return sorted(lines)


@pytest.mark.parametrize(
    ("pagesize", "big_endian"),
    [(512, False), (4096, False), (65536, False), (512, True), (4096, True)],
    ids=["512-le-overflow", "4096-le-overflow", "65536-le-inline", "512-be-overflow", "4096-be-overflow"],
)
def test_packages_of_a_berkeley_db_written_by_libdb_match_what_rpm_lists(
    headers: list[bytes], work: Path, pagesize: int, big_endian: bool
) -> None:
    folder = make_rpmdb_bdb(work, headers, pagesize=pagesize, big_endian=big_endian)
    found = parse_rpmdb_bdb((folder / "Packages").read_bytes())
    assert sorted(found) == EXPECTED
    assert _as_rpm_lists(found) == _rpm_listed(folder)


@pytest.mark.parametrize("pagesize", [512, 4096])
def test_a_database_of_many_pages_is_read_whole(headers: list[bytes], work: Path, pagesize: int) -> None:
    folder = make_rpmdb_bdb(work, headers * COPIES, pagesize=pagesize)
    found = parse_rpmdb_bdb((folder / "Packages").read_bytes())
    assert len(found) == len(PACKAGES) * COPIES
    assert sorted(set(found)) == EXPECTED
    assert _as_rpm_lists(found) == _rpm_listed(folder)


def test_more_packages_than_the_limit_are_refused(
    headers: list[bytes], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (make_rpmdb_bdb(work, headers * 4, pagesize=4096) / "Packages").read_bytes()
    monkeypatch.setattr(rpm_bdb, "MAX_ROWS", 12)
    assert len(parse_rpmdb_bdb(data)) == 12  # rpm's counter is not a package
    monkeypatch.setattr(rpm_bdb, "MAX_ROWS", 11)
    with pytest.raises(RpmFormatError, match="more than 11 packages"):
        parse_rpmdb_bdb(data)


# Damage done to a genuine little-endian file of 512-byte pages, at the offsets Berkeley DB's
# layout gives (db_page.h): the metadata page's fields, a page's header, an off-page item.
PAGE = 512


def _pages(data: bytes, kind: int) -> list[int]:
    return [n for n in range(1, len(data) // PAGE) if data[n * PAGE + 25] == kind]


def _next(data: bytes, pgno: int) -> int:
    return int(struct.unpack_from("<I", data, pgno * PAGE + 16)[0])


def _put(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _offpage_items(data: bytes) -> list[int]:
    """File offsets of the off-page items of the hash pages."""
    found = []
    for pgno in _pages(data, rpm_bdb.P_HASH):
        base = pgno * PAGE
        (entries,) = struct.unpack_from("<H", data, base + 20)
        for start in struct.unpack_from(f"<{entries}H", data, base + 26):
            if data[base + start] == rpm_bdb.H_OFFPAGE:
                found.append(base + start)
    return found


def _chained(data: bytes) -> int:
    """An overflow page followed by another."""
    return next(p for p in _pages(data, rpm_bdb.P_OVERFLOW) if _next(data, p) != 0)


def _cut_short(data: bytes) -> bytes:
    """The first hash page's off-page item (not its first item) made 4 bytes long."""
    base = PAGE * _pages(data, rpm_bdb.P_HASH)[0]
    (entries,) = struct.unpack_from("<H", data, base + 20)
    starts = struct.unpack_from(f"<{entries}H", data, base + 26)
    index = next(i for i in range(1, entries) if data[base + starts[i]] == rpm_bdb.H_OFFPAGE)
    start = starts[index - 1] - 4
    return _put(_put(data, base + 26 + 2 * index, "<H", start), base + start, "<B", rpm_bdb.H_OFFPAGE)


DAMAGE = {
    "truncated": lambda d: d[: len(d) - PAGE],
    "shorter than a page": lambda d: d[:100],
    "empty": lambda d: b"",
    "bad magic": lambda d: _put(d, 12, "<I", 0x053162),  # a btree's magic
    "encrypted": lambda d: _put(d, 24, "<B", 1),
    "not a hash metadata page": lambda d: _put(d, 25, "<B", 9),
    "unknown version": lambda d: _put(d, 16, "<I", 7),
    "page size 1 MiB": lambda d: _put(d, 20, "<I", 1 << 20),
    "page size not a power of two": lambda d: _put(d, 20, "<I", 1000),
    "page size zero": lambda d: _put(d, 20, "<I", 0),
    "last page past the end": lambda d: _put(d, 32, "<I", 0xFFFFFFFF),
    "off-page item past the file": lambda d: _put(d, _offpage_items(d)[0] + 4, "<I", 10_000),
    "off-page item naming no page": lambda d: _put(d, _offpage_items(d)[0] + 4, "<I", 0),
    "off-page item longer than its chain": lambda d: _put(d, _offpage_items(d)[0] + 8, "<I", 3000),
    "off-page item over the header limit": lambda d: _put(
        d, _offpage_items(d)[0] + 8, "<I", rpm_bdb.MAX_HEADER + 1
    ),
    "two items share a chain": lambda d: _put(
        d, _offpage_items(d)[1] + 4, "<II", *struct.unpack_from("<II", d, _offpage_items(d)[0] + 4)
    ),
    "overflow chain to itself": lambda d: _put(d, _chained(d) * PAGE + 16, "<I", _chained(d)),
    "overflow chain in a cycle": lambda d: _put(d, _next(d, _chained(d)) * PAGE + 16, "<I", _chained(d)),
    "overflow chain out of the file": lambda d: _put(d, _chained(d) * PAGE + 16, "<I", 99_999),
    "overflow page longer than a page": lambda d: _put(d, _chained(d) * PAGE + 22, "<H", PAGE),
    "overflow chain through a hash page": lambda d: _put(d, _chained(d) * PAGE + 16, "<I", 1),
    "hash page with more items than fit": lambda d: _put(d, PAGE + 20, "<H", 400),
    "hash page with an odd item count": lambda d: _put(d, PAGE + 20, "<H", 3),
    "hash item offset in the index": lambda d: _put(d, PAGE + 26, "<H", 10),
    "hash item of an unknown type": lambda d: _put(d, _offpage_items(d)[0], "<B", 5),
    "off-page item cut short": _cut_short,
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_a_damaged_database_is_refused(small_pages: bytes, damage: str) -> None:
    assert sorted(parse_rpmdb_bdb(small_pages)) == EXPECTED  # the file damaged is a good one
    damaged = DAMAGE[damage](small_pages)
    assert damaged != small_pages
    with pytest.raises(RpmFormatError):
        parse_rpmdb_bdb(damaged)


def test_a_header_that_is_not_one_is_refused(headers: list[bytes], work: Path) -> None:
    folder = make_rpmdb_bdb(work, [headers[0], b"\x00\x00\xff\xff" + b"\0" * 60], pagesize=4096)
    with pytest.raises(RpmFormatError, match="rpm header"):
        parse_rpmdb_bdb((folder / "Packages").read_bytes())


# Anywhere, or in the first bytes of a page (its header and item offsets), where damage matters.
WHERE = st.one_of(
    st.integers(min_value=0),
    st.builds(lambda page, offset: page * PAGE + offset, st.integers(0, 15), st.integers(0, 63)),
)


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=st.lists(st.tuples(WHERE, st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_any_mutation_gives_packages_or_a_format_error(
    small_pages: bytes, changes: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(small_pages)
    for where, value in changes:
        data[where % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        found = parse_rpmdb_bdb(bytes(data))
    except RpmFormatError:
        return
    assert all(p.ecosystem == "rpm" for p in found)
