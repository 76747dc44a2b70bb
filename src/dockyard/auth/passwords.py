"""Password hashing with argon2id (OWASP's minimum parameters: 19 MiB, 2 passes)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8


class Passwords:
    def __init__(self, memory_kib: int = 19 * 1024, time_cost: int = 2) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified for unknown users, so that they take as long as known ones.
        self._dummy = self._hasher.hash("dockyard-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, encoded: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(encoded or self._dummy, password) and encoded is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, encoded: str | None, password: str) -> bool:
        """True if ``password`` matches; ``encoded=None`` (no such user) costs the same and is False."""
        return await asyncio.to_thread(self._verify, encoded, password)


def check_strength(password: str, username: str) -> str | None:
    """Why ``password`` is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if password.lower() == username.lower():
        return "the password must differ from the username"
    return None
