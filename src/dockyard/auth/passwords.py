"""Password hashing with argon2id (OWASP's minimum parameters: 19 MiB, 2 passes).

A successful verification is remembered (:data:`REMEMBER_SECONDS`, the
:data:`REMEMBER_MAX` most recently used), so that a
client that logs in again and again (``docker login``, a token per pull, a CI job per
minute) pays argon2's ~30 ms of CPU once, not every time. What is remembered is only that
this password matches this stored hash: the stored hash holds a random salt and changes with
every password change, so an old password stops working at once, in every process, and
whether the account exists, is disabled or is an admin is read from the database on every
login as before. Failures are never remembered: a guess always costs argon2. The memory
holds an HMAC of (stored hash, password) under a random key of this process, never the
password. :meth:`Passwords.remembered` asks the memory alone (no argon2), for logins that
may skip the brute-force reservation (see :mod:`dockyard.auth.accounts`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
REMEMBER_SECONDS = 600.0
REMEMBER_MAX = 10_000  # ~1.5 MB at most


class Passwords:
    def __init__(self, memory_kib: int = 19 * 1024, time_cost: int = 2) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified for unknown users, so that they take as long as known ones.
        self._dummy = self._hasher.hash("dockyard-dummy-password")
        self._key = secrets.token_bytes(32)
        self._matched: OrderedDict[bytes, float] = OrderedDict()  # HMAC -> remembered until

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, encoded: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(encoded or self._dummy, password) and encoded is not None
        except (VerificationError, InvalidHashError):
            return False

    def mac(self, encoded: str, password: str) -> bytes:
        """HMAC-SHA256 of (``encoded``, ``password``) under this process's random key."""
        message = encoded.encode() + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, message, hashlib.sha256)

    def remembered(self, encoded: str, password: str) -> bool:
        """Whether ``password`` matched ``encoded`` within :data:`REMEMBER_SECONDS` (no argon2)."""
        return self._remembered(self.mac(encoded, password), time.monotonic())

    def _remembered(self, mac: bytes, now: float) -> bool:
        until = self._matched.get(mac)
        if until is None:
            return False
        if until > now:
            self._matched.move_to_end(mac)  # least recently used goes first
            return True
        del self._matched[mac]
        return False

    async def verify(self, encoded: str | None, password: str) -> bool:
        """True if ``password`` matches; ``encoded=None`` (no such user) costs the same and is False."""
        if encoded is None:
            return await asyncio.to_thread(self._verify, None, password)
        mac = self.mac(encoded, password)
        if self._remembered(mac, time.monotonic()):
            return True
        if not await asyncio.to_thread(self._verify, encoded, password):
            return False
        self._matched[mac] = time.monotonic() + REMEMBER_SECONDS
        if len(self._matched) > REMEMBER_MAX:
            self._matched.popitem(last=False)
        return True


def check_strength(password: str, username: str) -> str | None:
    """Why ``password`` is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if password.lower() == username.lower():
        return "the password must differ from the username"
    return None
