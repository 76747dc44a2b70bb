"""Brute-force protection: failed logins are counted per (username, address) and per
address; past the limit, logins are refused before any password is checked, until the
lock ends. Counters live in the database, so every worker and replica shares them.

On a full disk a failure cannot be written: it is then counted in this process (the same
limits, per worker), so that a full disk never lifts the protection; a success that cannot
clear its counter leaves it to expire."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select

from dockyard.auth.errors import Throttled
from dockyard.db.engine import Database
from dockyard.db.tables import login_throttle
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.auth")
LOCAL_KEYS_MAX = 10_000  # counters kept in memory while the database cannot take them


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 10  # per username and address, within the window
    max_failures_per_ip: int = 100
    window_seconds: float = 900.0
    lockout_seconds: float = 900.0


class LoginThrottle:
    def __init__(self, db: Database, policy: ThrottlePolicy, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        # key -> (failures, window start, locked until), for failures the database could not take
        self._local: dict[str, tuple[int, float, float | None]] = {}

    def _count(
        self, row: tuple[int, float] | None, limit: int, now: float
    ) -> tuple[int, float, float | None]:
        """The counter after one more failure: (failures, window start, locked until)."""
        if row is None or now - row[1] > self.policy.window_seconds:
            failures, start = 1, now
        else:
            failures, start = row[0] + 1, row[1]
        until = now + self.policy.lockout_seconds if failures >= limit else None
        return (0 if until else failures), start, until

    @staticmethod
    def _keys(username: str, ip: str | None) -> tuple[str, str]:
        address = ip or "-"
        return f"u:{username.lower()[:100]}|{address}", f"ip:{address}"

    async def check(self, username: str, ip: str | None) -> None:
        """Raise :class:`Throttled` while either counter is locked."""
        now = self.clock()
        stmt = select(login_throttle.c.locked_until).where(login_throttle.c.key.in_(self._keys(username, ip)))
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        local = [self._local[key][2] for key in self._keys(username, ip) if key in self._local]
        until = max((value or 0.0 for value in [*(row[0] for row in rows), *local]), default=0.0)
        if until > now:
            raise Throttled(until - now)

    async def failed(self, username: str, ip: str | None) -> bool:
        """Count a failure; True if it locked the username (or the address)."""
        now = self.clock()
        user_key, ip_key = self._keys(username, ip)
        limits = ((user_key, self.policy.max_failures), (ip_key, self.policy.max_failures_per_ip))
        locked = False
        try:
            async with self.db.write() as conn:
                for key, limit in limits:
                    row = (
                        await conn.execute(
                            select(login_throttle.c.failures, login_throttle.c.window_start).where(
                                login_throttle.c.key == key
                            )
                        )
                    ).first()
                    failures, start, until = self._count(
                        None if row is None else (row[0], row[1]), limit, now
                    )
                    locked = locked or until is not None
                    values = {"failures": failures, "window_start": start, "locked_until": until}
                    stmt = self.db.insert(login_throttle).values(key=key, **values)
                    await conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=values))
        except InsufficientStorage as exc:
            log.warning("a failed login of %r is counted in this process only: %s", username[:100], exc)
            return self._count_locally(limits, now)
        return locked

    def _count_locally(self, limits: tuple[tuple[str, int], ...], now: float) -> bool:
        if len(self._local) >= LOCAL_KEYS_MAX:  # oldest first (insertion order): bounded memory
            for key in list(self._local)[: LOCAL_KEYS_MAX // 10]:
                del self._local[key]
        locked = False
        for key, limit in limits:
            known = self._local.pop(key, None)
            failures, start, until = self._count(None if known is None else known[:2], limit, now)
            self._local[key] = (failures, start, until)
            locked = locked or until is not None
        return locked

    async def succeeded(self, username: str, ip: str | None) -> None:
        user_key, _ = self._keys(username, ip)
        self._local.pop(user_key, None)
        try:
            async with self.db.write() as conn:
                await conn.execute(delete(login_throttle).where(login_throttle.c.key == user_key))
        except InsufficientStorage as exc:
            log.warning("the failed logins of %r were not cleared: %s", username[:100], exc)
