"""Small filesystems for the disk-full tests: a tmpfs of a given size mounted on a folder
(root only: CI runs as root; anyone else gets a clear failure, never a skip), and a filler
file that takes every byte left on it."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MiB = 1024 * 1024


@contextlib.contextmanager
def tmpfs(folder: Path, size: int) -> Iterator[Path]:
    """``folder`` (created if missing) as a tmpfs of ``size`` bytes, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full tests mount a small tmpfs, which needs root (CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        # Lazily: a process the test could not stop must not keep the mount (and the test's
        # temporary folder) alive forever.
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its volume has not one byte left; the file's path."""
    filler = folder / "filler"
    block = b"\xa5" * MiB
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            try:
                os.write(fd, block)  # a short write fills the last pages; the next one fails
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    assert free_bytes(folder) == 0
    return filler
