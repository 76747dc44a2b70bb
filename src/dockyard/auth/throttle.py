"""Brute-force protection: failed logins are counted per (username, address) and per
address; past the limit, logins are refused before any password is checked, until the
lock ends. Counters live in the database, so every worker and replica shares them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select

from dockyard.auth.errors import Throttled
from dockyard.db.engine import Database
from dockyard.db.tables import login_throttle


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
        until = max((row[0] or 0.0 for row in rows), default=0.0)
        if until > now:
            raise Throttled(until - now)

    async def failed(self, username: str, ip: str | None) -> bool:
        """Count a failure; True if it locked the username (or the address)."""
        now = self.clock()
        user_key, ip_key = self._keys(username, ip)
        locked = False
        async with self.db.write() as conn:
            for key, limit in (
                (user_key, self.policy.max_failures),
                (ip_key, self.policy.max_failures_per_ip),
            ):
                row = (
                    await conn.execute(
                        select(login_throttle.c.failures, login_throttle.c.window_start).where(
                            login_throttle.c.key == key
                        )
                    )
                ).first()
                if row is None or now - row[1] > self.policy.window_seconds:
                    failures, start = 1, now
                else:
                    failures, start = row[0] + 1, row[1]
                until = now + self.policy.lockout_seconds if failures >= limit else None
                locked = locked or until is not None
                values = {"failures": 0 if until else failures, "window_start": start, "locked_until": until}
                stmt = self.db.insert(login_throttle).values(key=key, **values)
                await conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=values))
        return locked

    async def succeeded(self, username: str, ip: str | None) -> None:
        user_key, _ = self._keys(username, ip)
        async with self.db.write() as conn:
            await conn.execute(delete(login_throttle).where(login_throttle.c.key == user_key))
