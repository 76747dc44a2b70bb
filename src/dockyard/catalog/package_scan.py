"""Reading the packages an image's filesystem declares: its layers, streamed, never unpacked.

Each platform's layers are read in order through the safe tar reader (links kept as written,
never followed) and merged as a runtime merges them (:class:`dockyard.archive.overlay.Overlay`:
whiteouts and opaque folders honoured), keeping only the bytes of the files a package manager
keeps (:func:`dockyard.archive.packages.kind_of`): at most ``per_file`` bytes for a database,
``per_record`` for a one-package file, ``total`` kept in all. A file over its limit is skipped
and makes the scan ``partial``, with the reason; so does an rpm database kept in a format not
read (NDB; the SQLite ``rpmdb.sqlite`` and BerkeleyDB ``Packages`` are read), and so does a
database that is not what its package manager writes (why is noted). Decompression and parsing
run in a worker thread with an event loop of its own, fed the layer bytes by the server's loop,
so a large image never stalls requests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from dockyard.archive.errors import InvalidArchive, UnsafeArchive
from dockyard.archive.overlay import Overlay
from dockyard.archive.packages import DATABASES, TEXT_PARSERS, UNREAD, Kind, Package, kind_of
from dockyard.archive.rpm_bdb import parse_rpmdb_bdb
from dockyard.archive.rpmdb import RpmFormatError, parse_rpmdb_sqlite
from dockyard.archive.safe_tar import EntryKind, LinkPolicy, SafeTarReader, TarLimits

MiB = 1 << 20
SUCCEEDED, FAILED, PARTIAL = "succeeded", "failed", "partial"
# This scanner's version, recorded with each scan: raise it when the scan reads more (2: the
# BerkeleyDB rpm database), and the catalog's sweep makes again the scans an older scanner
# left partial or failed (a complete one stays).
SCANNER = 2
MAX_NOTES = 20
PIECE_WAIT = 300.0  # seconds the scan waits for one piece of a layer
READ_RPM = "rpmdb.sqlite and the BerkeleyDB Packages are read"

Layers = Callable[[str], AsyncIterator[bytes]]  # a layer's (compressed) bytes by digest


@dataclass(frozen=True)
class ScanLimits:
    per_file: int = 64 * MiB  # a package database (dpkg status, apk installed, rpm's databases)
    per_record: int = 4 * MiB  # a one-package file (conda-meta json, METADATA, DESCRIPTION)
    total: int = 256 * MiB  # bytes kept of all files of one platform
    layer_bytes: int = 64 << 30  # uncompressed bytes of one layer
    layer_entries: int = 2_000_000


@dataclass
class PlatformScan:
    packages: list[Package] = field(default_factory=list)
    bytes_read: int = 0
    notes: list[str] = field(default_factory=list)
    failed: bool = False


class _Kept:
    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.total = 0


async def _read_layer(
    chunks: AsyncIterator[bytes], overlay: Overlay[tuple[Kind, bytes | None]], kept: _Kept, scan: PlatformScan
) -> None:
    limits = kept.limits
    tar = TarLimits(
        max_entries=limits.layer_entries,
        max_name_length=4096,
        max_total_size=limits.layer_bytes,
        max_ratio=100_000.0,
        links=LinkPolicy.UNCHECKED,
        devices=True,
    )
    reader = SafeTarReader(chunks, tar)
    try:
        async for entry in reader:
            if not overlay.entry(entry.name, is_dir=entry.kind is EntryKind.DIRECTORY):
                continue
            if entry.kind is not EntryKind.FILE:
                continue
            kind = kind_of(entry.name)
            if kind is None:
                continue
            cap = limits.per_file if kind in DATABASES else limits.per_record
            if kind in UNREAD:
                overlay.keep(entry.name, (kind, None))
            elif entry.size > cap or kept.total + entry.size > limits.total:
                overlay.keep(entry.name, (kind, None))
                why = "the limit per file" if entry.size > cap else "the limit of bytes kept per image"
                _note(scan, f"{entry.name} ({entry.size:,} bytes) was not read: over {why}")
            else:
                kept.total += entry.size
                overlay.keep(entry.name, (kind, await entry.read(cap)))
    finally:
        scan.bytes_read += reader.input.bytes_out
    overlay.end_layer()


def _note(scan: PlatformScan, text: str) -> None:
    if len(scan.notes) < MAX_NOTES:
        scan.notes.append(text)


def _parse(overlay: Overlay[tuple[Kind, bytes | None]], scan: PlatformScan) -> None:
    found: set[Package] = set()
    for path in sorted(overlay.files):
        kind, data = overlay.files[path]
        if data is None:
            if kind in UNREAD:
                _note(scan, f"{path}: the {kind.value} rpm database format is not read ({READ_RPM})")
            continue
        try:
            if kind is Kind.RPM_SQLITE:
                found.update(parse_rpmdb_sqlite(data))
            elif kind is Kind.RPM_BDB:
                found.update(parse_rpmdb_bdb(data))
            else:
                found.update(TEXT_PARSERS[kind](data))
        except RpmFormatError as exc:
            _note(scan, f"{path}: {exc}")
        except (ValueError, RecursionError, UnicodeError, MemoryError) as exc:  # one file, not the scan
            _note(scan, f"{path}: not readable ({type(exc).__name__})")
    scan.packages = sorted(found)


async def scan_layers(layers: Layers, digests: list[str], limits: ScanLimits) -> PlatformScan:
    """The packages of one platform whose layers, bottom first, are ``digests``."""
    scan = PlatformScan()
    overlay: Overlay[tuple[Kind, bytes | None]] = Overlay()
    kept = _Kept(limits)
    for digest in digests:
        try:
            await _read_layer(layers(digest), overlay, kept, scan)
        except (InvalidArchive, UnsafeArchive) as exc:
            scan.failed = True
            _note(scan, f"layer {digest} could not be read: {exc}")
            return scan
    _parse(overlay, scan)
    return scan


def _bridged(
    source: AsyncIterator[bytes], home: asyncio.AbstractEventLoop, stop: threading.Event
) -> AsyncIterator[bytes]:
    """``source`` (iterated on ``home``) as an iterator for another thread's event loop; it
    ends with an error once ``stop`` is set or a piece takes longer than :data:`PIECE_WAIT`."""

    async def pull() -> AsyncIterator[bytes]:
        try:
            while True:
                if stop.is_set():
                    raise InvalidArchive("the scan was stopped")
                future = asyncio.run_coroutine_threadsafe(_next(source), home)
                try:
                    chunk = await asyncio.wait_for(asyncio.wrap_future(future), PIECE_WAIT)
                except (concurrent.futures.CancelledError, TimeoutError) as exc:
                    future.cancel()
                    raise InvalidArchive("the layer stopped being read") from exc
                if chunk is None:
                    return
                yield chunk
        finally:
            with contextlib.suppress(RuntimeError):  # the home loop is closed: nothing to close
                asyncio.run_coroutine_threadsafe(_close(source), home)

    return pull()


async def _next(source: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return None


async def _close(source: AsyncIterator[bytes]) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()


async def scan_in_thread(layers: Layers, digests: list[str], limits: ScanLimits) -> PlatformScan:
    """:func:`scan_layers` on a worker thread's event loop; the layers are read on this one."""
    home = asyncio.get_running_loop()
    stop = threading.Event()

    def bridged(digest: str) -> AsyncIterator[bytes]:
        return _bridged(layers(digest), home, stop)

    try:
        return await asyncio.to_thread(asyncio.run, scan_layers(bridged, digests, limits))
    finally:
        stop.set()  # cancelled (shutdown): the thread ends at its next piece
