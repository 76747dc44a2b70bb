"""Micro-benchmark of the archive import's blob sink (not part of ``python -m bench``).

Runs ``import_archive`` on an archive file into a ``RegistrySink`` over the filesystem
driver, twice per round:

- **fresh**: nothing is stored, every blob is hashed and staged (written and fsynced);
- **dedup**: the staged blobs were moved into the blob store and ``is_stored`` answers
  True for them, so the sink compares every byte against the stored blob and writes nothing.
  The stored blobs are first dropped from the page cache (``--stored cold``, the default: blobs
  pushed earlier, as the registry writes them with ``O_DIRECT``) or read into it (``warm``).

The archive is read in 4 MiB pieces with ``os.pread`` in a thread, the next piece read while
the current one is imported (as ``archive_import.read_ahead`` does); it is read once before
the first round, so that it comes from the page cache. The data folder must be on the disk
to measure::

    python -m bench.import_sink_micro --archive /tmp/exp/a.tar --data /tmp/sinkbench --rounds 3

Without ``--archive`` a 1 GiB OCI archive (16 gzip layers of 64 MiB) is built in the data
folder. The data folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.archive.ingest import import_archive
from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.storage.filesystem import FilesystemDriver
from dockyard.transfer.imports.sink import RegistrySink, staged_path

PIECE = 4 << 20
MB = 1e6


async def read_file(path: Path) -> AsyncIterator[bytes]:
    """The file in PIECE steps, the next one read (in a thread) while this one is used."""
    fd = os.open(path, os.O_RDONLY)
    offset = 0
    pending = asyncio.ensure_future(asyncio.to_thread(os.pread, fd, PIECE, offset))
    try:
        while chunk := await pending:
            offset += len(chunk)
            pending = asyncio.ensure_future(asyncio.to_thread(os.pread, fd, PIECE, offset))
            yield chunk
    finally:
        await asyncio.wait([pending])  # the thread may still read from fd
        os.close(fd)


def _cache(path: str, warm: bool) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if warm:
            while os.read(fd, 16 << 20):
                pass
        else:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


async def one_round(
    archive: Path, data: Path, round_no: int, warm: bool, sink_class: type[RegistrySink] = RegistrySink
) -> tuple[float, float]:
    """Seconds for the fresh import and for the dedup import of ``archive``."""
    storage = FilesystemDriver(data / f"round{round_no}")
    stored: set[Digest] = set()

    async def is_stored(digest: Digest) -> bool:
        return digest in stored

    fresh = sink_class(storage, "archives/x", is_stored)
    start = time.perf_counter()
    imported = await import_archive(read_file(archive), fresh)
    await fresh.discard(imported.unreferenced)
    fresh_seconds = time.perf_counter() - start
    assert fresh.written > 0, fresh.written
    assert fresh.deduplicated == 0, fresh.deduplicated

    for blob in imported.blobs.values():  # "commit" them into the blob store
        await storage.move(staged_path(fresh.folder, blob.digest), blob_path(blob.digest))
        stored.add(blob.digest)
        local = await storage.local_file(blob_path(blob.digest))
        assert local is not None
        _cache(local.path, warm)

    again = sink_class(storage, "archives/y", is_stored)
    start = time.perf_counter()
    imported_again = await import_archive(read_file(archive), again)
    await again.discard(imported_again.unreferenced)
    dedup_seconds = time.perf_counter() - start
    assert again.written == 0, again.written
    assert {b.digest for b in imported_again.blobs.values()} == stored

    await asyncio.to_thread(shutil.rmtree, storage.root)
    return fresh_seconds, dedup_seconds


def _warm(path: Path) -> None:
    with path.open("rb") as f:
        while f.read(16 << 20):
            pass


def _build(data: Path) -> Path:
    from bench.archive_data import build_oci_archive
    from bench.data import BlobSource

    source = BlobSource(data / "source.bin", 1 << 30)
    return build_oci_archive(data / "archive.tar", source, 1 << 30, 64 << 20).path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", type=Path, help="an OCI or docker-save archive (default: build one)")
    parser.add_argument("--data", type=Path, default=Path("/tmp/sinkbench"), help="deleted at the end")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stored", choices=["cold", "warm"], default="cold", help="stored blobs' page cache")
    args = parser.parse_args()
    data: Path = args.data
    if data.exists():
        raise SystemExit(f"{data} exists; pick a new folder (it is deleted at the end)")
    data.mkdir(parents=True)
    try:
        archive: Path = args.archive or _build(data)
        size = archive.stat().st_size
        _warm(archive)
        fresh: list[float] = []
        dedup: list[float] = []
        for round_no in range(args.rounds):
            f, d = asyncio.run(one_round(archive, data, round_no, args.stored == "warm"))
            fresh.append(size / f / MB)
            dedup.append(size / d / MB)
            print(
                f"round {round_no + 1}: fresh {fresh[-1]:7.1f} MB/s, dedup {dedup[-1]:7.1f} MB/s", flush=True
            )
        print(
            f"median over {args.rounds} ({size / MB:.0f} MB archive): "
            f"fresh {statistics.median(fresh):.1f} MB/s, "
            f"dedup ({args.stored}) {statistics.median(dedup):.1f} MB/s"
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
