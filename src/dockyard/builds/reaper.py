"""Clean up after a worker that died mid-build.

A build's commands run in sessions of their own, so they outlive a worker that is killed
(``kill -9``, OOM, a lost machine resumes): buildah would go on running the RUN step and
its folder would stay. Each build folder therefore records its owner (pid and start
time) and the process groups it started; the next build on the machine kills the groups
of folders whose owner is gone and removes those folders (:func:`sweep`).

Process ids are compared together with their start time (``/proc/<pid>/stat``), so a
reused pid is never taken for the process that is gone, nor killed in its place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

OWNER, GROUPS, RUNROOT = "owner", "groups", "runroot"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _group_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def claim(folder: Path, runroot: Path) -> None:
    """Mark ``folder`` as this process's build."""
    pid = os.getpid()
    (folder / OWNER).write_text(f"{pid} {start_time(pid)}\n")
    (folder / RUNROOT).write_text(str(runroot))


def record_group(folder: Path, pgid: int) -> None:
    with (folder / GROUPS).open("a") as out:
        out.write(f"{pgid} {start_time(pgid)}\n")


def _alive(pid: int, started: str) -> bool:
    return str(start_time(pid)) == started


def _kill_group(pgid: int, started: int) -> None:
    """Kill group ``pgid`` if a member started no earlier than its leader did (same group)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _group_of(pid) == pgid and (start_time(pid) or 0) >= started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            return


def sweep(work_dir: Path) -> list[Path]:
    """Kill what dead workers' builds left running under ``work_dir`` and remove their
    folders; returns the folders removed."""
    removed: list[Path] = []
    if not work_dir.is_dir():
        return removed
    for folder in work_dir.glob("run-*"):
        try:
            pid, started = (folder / OWNER).read_text().split()
        except (OSError, ValueError):
            continue  # being created, or not ours
        if _alive(int(pid), started):
            continue
        with contextlib.suppress(OSError):
            for line in (folder / GROUPS).read_text().splitlines():
                pgid, group_started = line.split()
                if group_started.isdigit():
                    _kill_group(int(pgid), int(group_started))
        with contextlib.suppress(OSError):
            shutil.rmtree((folder / RUNROOT).read_text().strip(), ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
