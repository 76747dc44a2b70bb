"""RPM databases in the Berkeley DB format: the ``Packages`` hash database of rpm before 4.16
(CentOS 7, RHEL/UBI 8, Rocky and Alma 8, Amazon Linux 2), whose values are header blobs.

The file comes from an image anyone may push, so it is read here in pure Python from the bytes
already in memory, never opened with libdb (whose code trusts its files): every page number,
offset and length is checked against the file before it is used, each overflow page may belong
to one item only (so a chain cannot loop or be read twice), a value's length must be the one
its item declares and at most :data:`MAX_HEADER` bytes, and at most
:data:`~dockyard.archive.rpmdb.MAX_ROWS` packages are read. Anything else raises
:class:`~dockyard.archive.rpmdb.RpmFormatError`.

The layout is Berkeley DB's hash access method (hash versions 8 to 10: libdb 4.x to 6.x), in
the byte order the file's magic number is written in:

- page 0 is the metadata page: magic (``0x061561``) at offset 12, version at 16, page size at 20,
  encryption algorithm at 24 (encrypted files are refused), page type at 25 (8, hash metadata),
  last page number at 32;
- every page starts with a 26-byte header: LSN (8), page number, previous and next page (4 each),
  item count (2), high free offset (2), level (1), page type (1);
- a hash page (type 13, or 2 as libdb 4.5 and older wrote them) has its items' 2-byte offsets
  after the header, items alternating key and value, item ``i`` ending where item ``i - 1``
  begins (item 0 at the page's end); an item's first byte is its type: 1, the bytes inline;
  3, off-page: 3 pad bytes, the first overflow page and the total length (4 bytes each);
- an overflow page (type 7) holds its bytes from offset 26, as many as its high free offset
  says, and names the next page of the chain (0 at its end).

Every hash page is read (freed pages are marked invalid by libdb, so none is read twice); each
value is a header parsed by :func:`~dockyard.archive.rpmdb.parse_header`, except the value of
key 0 (rpm's counter of header instances).
"""

from __future__ import annotations

import struct

from dockyard.archive.packages import Package
from dockyard.archive.rpmdb import MAX_ROWS, RpmFormatError, parse_header

HASH_MAGIC = 0x061561
HASH_VERSIONS = frozenset({8, 9, 10})
P_HASH_UNSORTED, P_OVERFLOW, P_HASHMETA, P_HASH = 2, 7, 8, 13
H_KEYDATA, H_OFFPAGE = 1, 3
PAGE_HEADER = 26
MIN_PAGE, MAX_PAGE = 512, 65536
MAX_HEADER = 32 << 20  # bytes of one header blob (rpm's own limit is 256 MiB)
COUNTER_KEYS = frozenset({b"\0\0\0\0"})  # rpm's key 0, in either byte order


class _File:
    def __init__(self, data: bytes) -> None:
        if len(data) < MIN_PAGE:
            raise RpmFormatError("a Berkeley DB file shorter than one page")
        if struct.unpack_from("<I", data, 12)[0] == HASH_MAGIC:
            self.order = "<"
        elif struct.unpack_from(">I", data, 12)[0] == HASH_MAGIC:
            self.order = ">"
        else:
            raise RpmFormatError("not a Berkeley DB hash database")
        version, pagesize = struct.unpack_from(self.order + "II", data, 16)
        encryption, kind = data[24], data[25]
        (last,) = struct.unpack_from(self.order + "I", data, 32)
        if version not in HASH_VERSIONS:
            raise RpmFormatError(f"Berkeley DB hash version {version} is not read")
        if encryption != 0:
            raise RpmFormatError("an encrypted Berkeley DB database is not read")
        if kind != P_HASHMETA:
            raise RpmFormatError(f"a Berkeley DB hash database whose first page has type {kind}")
        if not MIN_PAGE <= pagesize <= MAX_PAGE or pagesize & (pagesize - 1):
            raise RpmFormatError(f"a Berkeley DB page size of {pagesize} bytes")
        if (last + 1) * pagesize > len(data):
            raise RpmFormatError(f"a Berkeley DB file of {len(data):,} bytes claiming {last + 1:,} pages")
        self.data = memoryview(data)
        self.pagesize = pagesize
        self.pages = last + 1
        self.overflow_used: set[int] = set()

    def page(self, pgno: int) -> memoryview:
        if not 0 < pgno < self.pages:
            raise RpmFormatError(f"a Berkeley DB page number {pgno} outside the file")
        return self.data[pgno * self.pagesize : (pgno + 1) * self.pagesize]

    def header(self, page: memoryview) -> tuple[int, int, int, int]:
        """next page, item count, high free offset, page type"""
        following, entries, offset = struct.unpack_from(self.order + "IHH", page, 16)
        return following, entries, offset, page[25]

    def items(self, page: memoryview, entries: int) -> list[bytes]:
        if entries % 2 or PAGE_HEADER + 2 * entries > self.pagesize:
            raise RpmFormatError(f"a Berkeley DB hash page with {entries} items")
        offsets = struct.unpack_from(f"{self.order}{entries}H", page, PAGE_HEADER)
        end, items = self.pagesize, []
        for start in offsets:
            if not PAGE_HEADER + 2 * entries <= start < end:
                raise RpmFormatError("a Berkeley DB hash item outside its page")
            items.append(self.item(page[start:end]))
            end = start
        return items

    def item(self, raw: memoryview) -> bytes:
        if raw[0] == H_KEYDATA:
            return bytes(raw[1:])
        if raw[0] != H_OFFPAGE:
            raise RpmFormatError(f"a Berkeley DB hash item of type {raw[0]} (not an rpm database's)")
        if len(raw) < 12:
            raise RpmFormatError("a Berkeley DB off-page item shorter than 12 bytes")
        pgno, length = struct.unpack_from(self.order + "II", raw, 4)
        if length > MAX_HEADER:
            raise RpmFormatError(f"a Berkeley DB item of {length:,} bytes (at most {MAX_HEADER:,} are read)")
        return self.overflow(pgno, length)

    def overflow(self, pgno: int, length: int) -> bytes:
        pieces: list[bytes] = []
        got = 0
        while pgno != 0:
            if pgno in self.overflow_used:
                raise RpmFormatError(f"the Berkeley DB overflow page {pgno} is used twice")
            self.overflow_used.add(pgno)
            page = self.page(pgno)
            pgno, _, size, kind = self.header(page)
            if kind != P_OVERFLOW or size > self.pagesize - PAGE_HEADER or got + size > length:
                raise RpmFormatError("a Berkeley DB overflow chain that is not what its item declares")
            pieces.append(bytes(page[PAGE_HEADER : PAGE_HEADER + size]))
            got += size
        if got != length:
            raise RpmFormatError(f"a Berkeley DB overflow chain of {got:,} bytes declared {length:,}")
        return b"".join(pieces)


def parse_rpmdb_bdb(data: bytes) -> list[Package]:
    """Every package of an rpm ``Packages`` Berkeley DB hash database held in ``data``."""
    db = _File(data)
    found: list[Package] = []
    pairs = 0
    for pgno in range(1, db.pages):
        page = db.page(pgno)
        _, entries, _, kind = db.header(page)
        if kind not in (P_HASH, P_HASH_UNSORTED):
            continue
        items = db.items(page, entries)
        for key, value in zip(items[::2], items[1::2], strict=True):
            pairs += 1
            if pairs > MAX_ROWS + 1:  # the packages and rpm's counter
                raise RpmFormatError(f"the rpm database holds more than {MAX_ROWS} packages")
            if key in COUNTER_KEYS:
                continue
            package = parse_header(value)
            if package is not None:
                found.append(package)
    return found
