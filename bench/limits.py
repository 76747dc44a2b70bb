"""The machine's own limits, measured in the same run as the registries."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.config import BenchConfig, MiB
from bench.data import BlobSource
from bench.metrics import Results
from bench.servers import REPO_ROOT, free_port


@dataclass
class Limit:
    key: str
    label: str
    value: float
    unit: str
    note: str = ""


def sha256_speed(source: BlobSource, total: int) -> float:
    """hashlib sha256 on one core, 64 MiB buffers (bytes/s)."""
    buf = source.read(0, min(64 * MiB, source.size))
    rounds = max(1, total // len(buf))
    h = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(rounds):
        h.update(buf)
    return rounds * len(buf) / (time.perf_counter() - start)


def gzip_speed(source: BlobSource, total: int, level: int = 6) -> float:
    """zlib gzip at ``level`` on one core, over random data, 4 MiB pieces (input bytes/s)."""
    piece = source.read(0, min(4 * MiB, source.size))
    rounds = max(1, total // len(piece))
    engine = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    start = time.perf_counter()
    for _ in range(rounds):
        engine.compress(piece)
    engine.flush()
    return rounds * len(piece) / (time.perf_counter() - start)


def loopback_tcp(total: int) -> float:
    """One TCP stream over 127.0.0.1 between two threads, 4 MiB sends and receives (bytes/s)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = 0

    def receive() -> None:
        nonlocal received
        conn, _ = listener.accept()
        buf = bytearray(4 * MiB)
        view = memoryview(buf)
        with conn:
            while received < total:
                n = conn.recv_into(view)
                if not n:
                    break
                received += n

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    payload = os.urandom(4 * MiB)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sender:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            sender.sendall(payload)
            sent += len(payload)
        thread.join(timeout=60)
        elapsed = time.perf_counter() - start
    listener.close()
    return received / elapsed


def disk_write(folder: Path, source: BlobSource, total: int) -> float:
    """Buffered write of ``total`` bytes then fsync, in ``folder``'s filesystem (bytes/s)."""
    buf = source.read(0, min(4 * MiB, source.size))
    path = folder / "disk-probe.bin"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            start = time.perf_counter()
            written = 0
            while written < total:
                written += os.write(fd, buf)
            os.fsync(fd)
            elapsed = time.perf_counter() - start
        finally:
            os.close(fd)
    finally:
        path.unlink(missing_ok=True)
    return written / elapsed


@dataclass(frozen=True)
class DirectWrite:
    rate: float  # bytes/s
    direct: bool  # False: the filesystem refused O_DIRECT; buffered writes + fdatasync instead


def disk_write_direct(folder: Path, source: BlobSource, total: int) -> DirectWrite:
    """Write ``total`` bytes in ``folder``'s filesystem from one 4 MiB page-aligned buffer with
    ``O_DIRECT``, then fsync (``dd oflag=direct conv=fsync``): how the archive import writes
    every blob to staging. Where the filesystem refuses ``O_DIRECT`` (EINVAL at open or at the
    first write), the writes are buffered and flushed with ``fdatasync`` every 64 MiB, which is
    what the server then does."""
    piece = 4 * MiB
    buf = mmap.mmap(-1, piece)  # anonymous maps are page-aligned, as the server's buffers are
    data = source.read(0, min(piece, source.size))
    buf[: len(data)] = data
    view = memoryview(buf)
    path = folder / "disk-direct-probe.bin"
    try:
        direct = hasattr(os, "O_DIRECT")
        if direct:
            try:
                return DirectWrite(_timed_write(path, view, total, os.O_DIRECT), True)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
        return DirectWrite(_timed_write(path, view, total, 0, sync_every=64 * MiB), False)
    finally:  # the map is freed with the last reference (an error's traceback may hold a slice)
        path.unlink(missing_ok=True)


def _timed_write(path: Path, view: memoryview, total: int, flags: int, sync_every: int = 0) -> float:
    """``total`` bytes written from ``view`` again and again, then fsync (bytes/s)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o600)
    try:
        start = time.perf_counter()
        written = unsynced = 0
        while written < total:
            done = 0
            while done < len(view):
                done += os.write(fd, view[done:])
            written += done
            unsynced += done
            if sync_every and unsynced >= sync_every:
                os.fdatasync(fd)
                unsynced = 0
        os.fsync(fd)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return written / elapsed


@contextlib.contextmanager
def trivial_server(*args: str) -> Iterator[int]:
    """Run ``bench.trivial_server`` in its own process; yields its port."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.trivial_server", *args, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"trivial server {args} did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


MACHINE = "machine"  # the "registry" name under which workloads file ceiling samples

# Ceilings measured by the workloads themselves, once per round, between the registries' turns.
CEILINGS: dict[str, tuple[str, str, str]] = {
    "get_ceiling_1": (
        "blob GET ceiling, 1 client (curl vs sendfile server)",
        "MB/s",
        "same curl client, trivial sendfile server",
    ),
    "get_ceiling_n": (
        "blob GET ceiling, N clients (curl vs sendfile server)",
        "MB/s",
        "same curl clients, trivial sendfile server",
    ),
    "head_ceiling": (
        "manifest HEAD ceiling (hey vs trivial server)",
        "req/s",
        "load tool vs trivial uvloop server, same 2 cores",
    ),
    "get_manifest_ceiling": (
        "manifest GET ceiling (wrk vs trivial server)",
        "req/s",
        "load tool vs trivial uvloop server, same 2 cores",
    ),
    "export_ceiling": (
        "archive download ceiling, 1 client (curl vs sendfile server)",
        "MB/s",
        "same curl client, trivial sendfile server serving the import archive file",
    ),
    "disk_write_direct": (
        "disk write, O_DIRECT (4 MiB aligned buffers + fsync)",
        "MB/s",
        "like dd oflag=direct conv=fsync: how the archive import writes every blob to staging",
    ),
    "gzip6": (
        "gzip level 6, one core (zlib, random data)",
        "MB/s",
        "what a docker-save import does to every layer byte",
    ),
    "s3_raw_put": (
        "S3 bucket raw PUT (boto3 put_object, same radosgw)",
        "MB/s",
        "one PutObject straight to the bucket, boto3 configured as Dockyard's driver (SigV4 "
        "over http: the body's sha256 is computed first)",
    ),
    "s3_raw_get": (
        "S3 bucket raw GET, 1 client (curl, presigned URL)",
        "MB/s",
        "the same curl command as the S3 blob GET rows, straight from radosgw",
    ),
}


def ceiling_limits(results: Results, get_clients: int) -> list[Limit]:
    """The ceilings the workloads measured; a sample's ``label`` or ``note`` extra (the last
    one) replaces the default, e.g. when a probe had to measure something else."""
    out: list[Limit] = []
    for key, (label, unit, note) in CEILINGS.items():
        value = results.median(key, MACHINE)
        if value is None:
            continue
        for extra in results.extras:
            if extra["metric"] == key and extra["registry"] == MACHINE:
                label, note = str(extra.get("label", label)), str(extra.get("note", note))
        out.append(Limit(key, label.replace("N clients", f"{get_clients} clients"), value, unit, note))
    return out


def measure(
    cfg: BenchConfig, source: BlobSource, data_folder: Path, say: Callable[[str], None] = print
) -> list[Limit]:
    """The probes that need no server: sha256, loopback TCP, disk."""
    limits: list[Limit] = []

    def add(limit: Limit) -> None:
        limits.append(limit)
        value = limit.value / 1e6 if limit.unit == "MB/s" else limit.value
        say(f"  {limit.label}: {value:,.0f} {limit.unit}")

    add(Limit("sha256", "sha256, one core (hashlib)", sha256_speed(source, cfg.limit_bytes), "MB/s"))
    tcp = loopback_tcp(2 * cfg.limit_bytes)
    add(Limit("loopback_tcp", "loopback TCP, one stream (Python socket pair)", tcp, "MB/s"))
    disk = disk_write(data_folder, source, cfg.limit_bytes)
    add(Limit("disk_write", "disk write + fsync (data folder's filesystem)", disk, "MB/s"))
    return limits
