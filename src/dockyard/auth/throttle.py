"""Brute-force protection, with counters in the database so that every worker and replica
shares them.

Two counters, with different jobs:

- **per username and address**: every password attempt *reserves* its place in the count
  before the password is checked, in one atomic statement (an upsert that increments and
  returns the count), so however many guesses arrive at once, at most ``max_failures`` of
  them are evaluated in a window; past that the login is locked for ``lockout_seconds``,
  even for the right password. A success clears the count.
- **per address**: counts failed logins whatever the name. An address is shared by
  everyone behind the same NAT or proxy, so this counter never refuses a correct
  credential (that would let one attacker lock a whole site out); past its limit it refuses
  names that do not exist without checking a password (no hash to compute for a flood of
  made-up names) and answers every failure with 429, so that scripts back off. Guessing
  against real names stays bounded by their own counters.

Two kinds of password attempt take no place of their own (see
:meth:`dockyard.auth.accounts.Accounts.authenticate`): a password that matched the user's
stored hash moments ago (remembered by :class:`~dockyard.auth.passwords.Passwords`) is no
guess, and passes unless the name is locked from that address (:meth:`LoginThrottle.user_lock`,
a read); identical attempts under way at once (same name, address and password) share the
first one's reservation and answer. So a cluster starting its jobs with one account's
password is not locked out, while different guesses are counted as before.

Tokens (personal access and robot tokens) carry 32 random bytes: a guess cannot succeed,
so no lock applies to them and a valid one always passes; a failed one still counts
against its address.

On a full disk an attempt cannot be written: it is then counted in this process (the same
limits, per worker), so that a full disk never lifts the protection; a success that cannot
clear its counter leaves it to expire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, or_, select

from dockyard.auth.errors import Throttled
from dockyard.auth.tables import login_throttle
from dockyard.db.engine import Database
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.auth")
LOCAL_KEYS_MAX = 10_000  # counters kept in memory while the database cannot take them


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 10  # per username and address, within the window
    max_failures_per_ip: int = 100
    window_seconds: float = 900.0
    lockout_seconds: float = 900.0


@dataclass(frozen=True)
class Count:
    """A counter after one more attempt: its number in the window, and its lock."""

    number: int
    locked_until: float | None

    def remaining(self, now: float) -> float | None:
        return None if self.locked_until is None or self.locked_until <= now else self.locked_until - now


class LoginThrottle:
    def __init__(self, db: Database, policy: ThrottlePolicy, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        # key -> (number, window start, locked until), for attempts the database could not take
        self._local: dict[str, tuple[int, float, float | None]] = {}

    @staticmethod
    def _keys(username: str, ip: str | None) -> tuple[str, str]:
        address = ip or "-"
        return f"u:{username.lower()[:100]}|{address}", f"ip:{address}"

    async def _count(self, key: str, limit: int) -> Count:
        """Add one to ``key``'s counter in one statement and return it. A counter whose
        window or lock has ended starts again at 1; the attempt that reaches ``limit`` sets
        the lock; attempts during a lock go on counting but do not extend it."""
        now = self.clock()
        t = login_throttle.c
        locked = and_(t.locked_until.is_not(None), t.locked_until > now)
        restart = or_(t.window_start <= now - self.policy.window_seconds, t.locked_until.is_not(None))
        number = case((locked, t.failures + 1), (restart, 1), else_=t.failures + 1)
        values: dict[str, Any] = {
            "failures": number,
            "window_start": case((locked, t.window_start), (restart, now), else_=t.window_start),
            "locked_until": case(
                (locked, t.locked_until),
                (case((restart, 1), else_=t.failures + 1) >= limit, now + self.policy.lockout_seconds),
                else_=None,
            ),
        }
        first = now + self.policy.lockout_seconds if limit <= 1 else None
        stmt = (
            self.db.insert(login_throttle)
            .values(key=key, failures=1, window_start=now, locked_until=first)
            .on_conflict_do_update(index_elements=["key"], set_=values)
            .returning(t.failures, t.locked_until)
        )
        try:
            async with self.db.write() as conn:
                row = (await conn.execute(stmt)).one()
        except InsufficientStorage as exc:
            log.warning("a login attempt is counted in this process only: %s", exc)
            return self._count_locally(key, limit, now)
        count = Count(int(row[0]), row[1])
        local = self._local.get(key)
        if local is not None and local[2] is not None and local[2] > now:  # a lock taken on a full disk
            return Count(max(count.number, local[0]), max(count.locked_until or 0.0, local[2]))
        return count

    def _count_locally(self, key: str, limit: int, now: float) -> Count:
        """:meth:`_count`'s rules, for a counter in this process's memory (bounded)."""
        if key not in self._local and len(self._local) >= LOCAL_KEYS_MAX:  # oldest first
            for old in list(self._local)[: LOCAL_KEYS_MAX // 10]:
                del self._local[old]
        number, start, until = self._local.pop(key, (0, now, None))
        if until is not None and until > now:
            number += 1
        elif until is not None or start <= now - self.policy.window_seconds:
            number, start, until = 1, now, None
        else:
            number += 1
        if until is None and number >= limit:
            until = now + self.policy.lockout_seconds
        self._local[key] = (number, start, until)
        return Count(number, until)

    async def reserve(self, username: str, ip: str | None) -> Count:
        """Count a password attempt for ``username`` from ``ip`` before it is checked;
        raise :class:`Throttled` (and check nothing) if it is over the limit."""
        count = await self._count(self._keys(username, ip)[0], self.policy.max_failures)
        if count.number > self.policy.max_failures:
            raise Throttled(count.remaining(self.clock()) or self.policy.lockout_seconds)
        return count

    async def address_lock(self, ip: str | None) -> float | None:
        """Seconds until the address's own lock ends, or None if it is not locked."""
        return await self._lock(self._keys("", ip)[1])

    async def user_lock(self, username: str, ip: str | None) -> float | None:
        """Seconds until the lock of ``username`` from ``ip`` ends, or None; counts nothing."""
        return await self._lock(self._keys(username, ip)[0])

    async def _lock(self, key: str) -> float | None:
        now = self.clock()
        stmt = select(login_throttle.c.locked_until).where(login_throttle.c.key == key)
        async with self.db.read() as conn:
            until = (await conn.execute(stmt)).scalar_one_or_none()
        local = self._local.get(key)
        until = max(until or 0.0, (local[2] or 0.0) if local else 0.0)
        return None if until <= now else until - now

    async def failed(self, ip: str | None) -> Count:
        """Count a failed login from ``ip`` (any name, password or token)."""
        return await self._count(self._keys("", ip)[1], self.policy.max_failures_per_ip)

    async def succeeded(self, username: str, ip: str | None) -> None:
        user_key, _ = self._keys(username, ip)
        self._local.pop(user_key, None)
        try:
            async with self.db.write() as conn:
                await conn.execute(delete(login_throttle).where(login_throttle.c.key == user_key))
        except InsufficientStorage as exc:
            log.warning("the failed logins of %r were not cleared: %s", username[:100], exc)
