"""Run one command of a build: its output, stdout and stderr merged, goes line by line to
the log; it is killed (its whole process group: buildah, runc and the RUN
step's processes go with it) at the deadline or when ``cancelled()`` raises.

Each command starts a new session, so killing the group never reaches the worker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dockyard.builds.builder import BuildTimedOut, Cancelled, LogSink

MAX_LINE = 16 * 1024  # longer lines are cut (a runaway RUN step printing without newlines)
READ_SIZE = 64 * 1024


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> BuildTimedOut:
        return BuildTimedOut(
            f"the build ran longer than its time limit of {self.seconds:g} seconds and was stopped"
        )


async def _pump(stream: asyncio.StreamReader, sink: LogSink) -> None:
    pending = b""
    while True:
        chunk = await stream.read(READ_SIZE)
        if not chunk:
            break
        pending += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            await sink.write(_text(line))
        while len(pending) > MAX_LINE:
            await sink.write(_text(pending[:MAX_LINE]) + " [line cut]")
            pending = pending[MAX_LINE:]
    if pending:
        await sink.write(_text(pending))


def _text(line: bytes) -> str:
    return line[:MAX_LINE].decode("utf-8", "replace")


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_logged(
    argv: Sequence[str],
    *,
    sink: LogSink,
    deadline: Deadline,
    cancelled: Cancelled,
    env: Mapping[str, str],
    cwd: Path | None = None,
    check_every: float = 1.0,
    started: Callable[[int], None] | None = None,
) -> int:
    """Run ``argv`` to completion and return its exit status; raises ``BuildTimedOut`` at the
    deadline and whatever ``cancelled()`` raises, after killing the process group.
    ``started`` learns the process group's id as soon as it exists."""
    if deadline.left() <= 0:
        raise deadline.expired()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    assert process.stdout is not None
    if started is not None:
        started(process.pid)
    pump = asyncio.create_task(_pump(process.stdout, sink))
    try:
        while not pump.done():
            left = deadline.left()
            if left <= 0:
                raise deadline.expired()
            await asyncio.wait({pump}, timeout=min(check_every, left))
            if not pump.done():
                await cancelled()
        await pump
        try:
            return await asyncio.wait_for(process.wait(), max(deadline.left(), 0.1))
        except TimeoutError:
            raise deadline.expired() from None
    except BaseException:
        _kill(process)
        pump.cancel()
        with contextlib.suppress(BaseException):
            await pump
        with contextlib.suppress(BaseException):
            await asyncio.shield(process.wait())
        raise


async def run_captured(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None, seconds: float = 60.0
) -> tuple[int, str]:
    """A short helper command (``git rev-parse``, ``buildah --version``): exit status and output."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), seconds)
    except BaseException:
        _kill(process)
        with contextlib.suppress(BaseException):
            await asyncio.shield(process.wait())
        raise
    return process.returncode or 0, output.decode("utf-8", "replace").strip()
