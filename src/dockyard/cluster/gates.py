"""A test seam that crash tests use to stop a server at a known point of its work.

Wired only when a ``DOCKYARD_TEST_*_GATE`` variable names a folder (the inspections', the
registry outbox's, the region copies'): at the point, the process creates ``started`` in the
folder and waits until ``open`` exists there, so a test can kill it there or let it go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

Gate = Callable[[], Awaitable[None]]


def file_gate(folder: Path) -> Gate:
    """Create ``started`` in ``folder``, then wait until ``open`` exists there."""

    async def wait() -> None:
        (folder / "started").touch()
        # A file made by another process (the test) has no event to await: poll it.
        while not (folder / "open").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    return wait
