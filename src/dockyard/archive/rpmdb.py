"""RPM databases: the SQLite ``rpmdb.sqlite`` (rpm 4.16 and later: Fedora 33+, RHEL 9, Rocky,
Alma, Amazon Linux 2023) and the header blobs it stores.

Each row of its ``Packages`` table is one package's header as rpm stores it: a big-endian
index count and data length, that many 16-byte index entries (tag, type, offset, count), then
the data store. NAME (1000), VERSION (1001), RELEASE (1002) and EPOCH (1003) are read; the
version is ``[EPOCH:]VERSION-RELEASE``. The database is opened from memory
(``sqlite3.Connection.deserialize``), never from a file; one written in WAL mode is opened as
a rollback-journal database (what a WAL file held that was not checkpointed is not seen).
"""

from __future__ import annotations

import sqlite3
import struct

from dockyard.archive.packages import Ecosystem, Package, _package

HEADER_MAGIC = b"\x8e\xad\xe8\x01"
NAME, VERSION, RELEASE, EPOCH = 1000, 1001, 1002, 1003
STRING, INT32, I18NSTRING = 6, 4, 9
MAX_INDEX = 100_000  # index entries in one header (rpm's own limit is 0x0000ffff)
MAX_ROWS = 100_000


class RpmFormatError(ValueError):
    """A header blob or database that is not what rpm writes."""


def parse_header(blob: bytes) -> Package | None:
    """One package from a header blob (with or without the 8-byte magic prefix)."""
    if blob[:4] == HEADER_MAGIC:
        blob = blob[8:]
    if len(blob) < 8:
        raise RpmFormatError("an rpm header shorter than its preamble")
    count, size = struct.unpack(">II", blob[:8])
    if count > MAX_INDEX or 8 + 16 * count + size > len(blob):
        raise RpmFormatError(f"an rpm header claiming {count} entries and {size} data bytes")
    store = blob[8 + 16 * count : 8 + 16 * count + size]
    values: dict[int, str] = {}
    for index in range(count):
        tag, kind, offset, n = struct.unpack(">iIiI", blob[8 + 16 * index : 24 + 16 * index])
        if tag not in (NAME, VERSION, RELEASE, EPOCH) or not 0 <= offset < len(store):
            continue
        if kind in (STRING, I18NSTRING):
            end = store.find(b"\0", offset)
            values[tag] = store[offset : end if end >= 0 else len(store)].decode("utf-8", "replace")
        elif kind == INT32 and n >= 1 and offset + 4 <= len(store):
            values[tag] = str(struct.unpack(">i", store[offset : offset + 4])[0])
    if NAME not in values:
        return None
    version = values.get(VERSION, "")
    if values.get(RELEASE):
        version = f"{version}-{values[RELEASE]}"
    if values.get(EPOCH) not in (None, "", "0"):
        version = f"{values[EPOCH]}:{version}"
    return _package(Ecosystem.RPM, values[NAME], version)


PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between two checks of the budget
MAX_PROGRESS_CALLS = 2_000  # 2e7 steps: ten times what reading 100,000 rows of a plain table takes


def parse_rpmdb_sqlite(data: bytes) -> list[Package]:
    """Every package of an ``rpmdb.sqlite`` held in ``data`` (read in memory)."""
    if data[:16] != b"SQLite format 3\0":
        raise RpmFormatError("not an SQLite database")
    if len(data) > 19 and data[18:20] == b"\x02\x02":  # WAL mode: open it as a plain database
        data = data[:18] + b"\x01\x01" + data[20:]
    conn = sqlite3.connect(":memory:")
    steps = [0]

    def budget() -> int:  # a non-zero answer interrupts the statement
        steps[0] += 1
        return 1 if steps[0] > MAX_PROGRESS_CALLS else 0

    try:
        conn.deserialize(data)
        # The file comes from an image anyone may push: its schema may hold views, triggers or
        # functions that would run unbounded. Only a plain table is read, with the schema's
        # own SQL distrusted, the values' length bounded and the work budgeted.
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, len(data) + 1)
        conn.set_progress_handler(budget, PROGRESS_STEPS)
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        if kind is None or kind[0] != "table":
            raise RpmFormatError("the rpm database has no Packages table")
        rows = conn.execute("SELECT blob FROM Packages LIMIT ?", (MAX_ROWS + 1,)).fetchall()
    except sqlite3.Error as exc:
        raise RpmFormatError(f"the rpm database cannot be read: {exc}") from exc
    finally:
        conn.close()
    if len(rows) > MAX_ROWS:
        raise RpmFormatError(f"the rpm database holds more than {MAX_ROWS} packages")
    found = []
    for (blob,) in rows:
        if isinstance(blob, bytes):
            package = parse_header(blob)
            if package is not None:
                found.append(package)
    return found
