"""Signals from inside the code under test, for tests that show something did NOT happen.

Such a test must not sleep and hope: it waits until the code has reached the point past which
the unwanted thing would already have happened (it backs off, it waits for a task), and only
then checks that it did not. Where the code offers no signal of its own, :class:`AsyncioSpy`
makes one of the ``asyncio`` call it waits with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

WAIT = 30.0  # seconds: only so that code that never gets there fails the test instead of hanging it


class AsyncioSpy:
    """Stands in for ``asyncio`` in one module (``monkeypatch.setattr(module, "asyncio", spy)``):
    everything is asyncio's own, but the calls of ``watched`` (say ``"sleep"``) that ``counts``
    (all by default) are counted, so that a test can wait until the module has made them.
    For code on the test's event loop."""

    def __init__(self, watched: str, counts: Callable[..., bool] = lambda *args, **kwargs: True) -> None:
        self.watched = watched
        self.counts = counts
        self.calls = 0
        self._real = getattr(asyncio, watched)
        self._called = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        if name == self.watched:
            return self._call
        return getattr(asyncio, name)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        if self.counts(*args, **kwargs):
            self.calls += 1
            self._called.set()
        return self._real(*args, **kwargs)

    async def reached(self, times: int = 1, *, unless: asyncio.Future[Any] | None = None) -> None:
        """Wait until ``times`` counted calls were made, or ``unless`` is done (code that does
        not wait where it should gets there instead: the caller's check then fails)."""
        try:
            async with asyncio.timeout(WAIT):
                while self.calls < times and not (unless is not None and unless.done()):
                    self._called.clear()
                    called = asyncio.ensure_future(self._called.wait())
                    try:
                        either = [called] if unless is None else [called, unless]
                        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        called.cancel()
        except TimeoutError:
            raise AssertionError(f"asyncio.{self.watched} was called {self.calls} of {times} times") from None
