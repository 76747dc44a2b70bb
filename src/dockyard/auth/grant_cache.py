"""A per-process cache of what the token endpoint decided for an access token: the subject
a personal access or robot token signs in as, and the grants it gets for the scopes asked.

A token request with a known token and scope then costs no database statement and no
permission lookup, only the JWT's signature. Entries are keyed by a SHA-256 of the Basic
header (the secret itself is never kept) and the scopes asked, and are used only while:

- the auth generation is unchanged: every committed write that changes rows of a table the
  decision reads (:data:`FACT_TABLES`: tokens, accounts, robots, memberships, teams,
  permissions, repositories, grants, workspaces) bumps it after its commit
  (:meth:`~dockyard.db.engine.Database.after_commit_touching`), so a revocation, a removed
  member, a changed visibility holds from the next request in every process. ``local`` is a
  counter in shared memory that every worker of the machine reads without I/O (bumped before
  the writer answers, so strictly before any next request); ``remote``, on PostgreSQL, the
  ``NOTIFY`` generations that reach other replicas too;
- it is younger than ``ttl`` (a bound should a process die between a commit and its bump;
  also how often a token's last use is noted, see ``LAST_USE_SECONDS``);
- the token and the grants it relies on are valid for at least ``MIN_TTL`` more seconds (the
  uncached path would leave out a grant that ends sooner).

Only successful token logins are kept: a wrong secret, a password or a refused token always
takes the full path (and the login throttle).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from dockyard.auth.jwt_tokens import MIN_TTL, Grant
from dockyard.auth.policy import Subject
from dockyard.cluster.cache import Generations, SharedMemoryGenerations

KEY = "!auth"  # the generation's name (no repository name holds a "!")
FACT_TABLES = frozenset(
    {
        "users",
        "access_tokens",
        "robots",
        "workspaces",
        "memberships",
        "teams",
        "team_members",
        "permissions",
        "repositories",
        "repository_grants",
    }
)


def machine_generations(data_dir: Path) -> SharedMemoryGenerations:
    """The auth generation shared by the server processes of ``data_dir`` on this machine
    (what a change written behind the server's back, by hand in SQL, must bump too)."""
    return SharedMemoryGenerations(data_dir.resolve() / "auth-generations", slots=16)


@dataclass(frozen=True)
class Granted:
    subject: Subject
    grants: list[Grant]
    cap: float | None  # the earliest expiry of the token or an access grant relied on


class GrantCache:
    def __init__(
        self,
        local: Generations,
        remote: Generations | None = None,
        max_entries: int = 4096,
        ttl: float = 30.0,
    ) -> None:
        self.local = local
        self.remote = remote
        self.max_entries = max_entries
        self.ttl = ttl
        # key -> (generation, usable until (wall clock), answer)
        self._entries: OrderedDict[str, tuple[int, float, Granted]] = OrderedDict()

    @staticmethod
    def key(header: str, scopes: list[str]) -> str:
        return hashlib.sha256("\n".join([header, *scopes]).encode()).hexdigest()

    def generation(self) -> int:
        remote = 0 if self.remote is None else self.remote.current(KEY)
        return (self.local.current(KEY) << 64) + remote

    def get(self, key: str) -> tuple[int, Granted | None]:
        """(the generation to store a fresh answer with, the cached answer or None); the
        generation is read first, so an answer read before a change is never kept after it."""
        generation = self.generation()
        entry = self._entries.get(key)
        if entry is None:
            return generation, None
        if entry[0] == generation and time.time() < entry[1]:
            self._entries.move_to_end(key)
            return generation, entry[2]
        del self._entries[key]
        return generation, None

    def put(self, key: str, generation: int, answer: Granted) -> None:
        now = time.time()
        until = now + self.ttl
        if answer.cap is not None:
            until = min(until, answer.cap - MIN_TTL)
        if until <= now:
            return
        self._entries[key] = (generation, until, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def changed(self) -> None:
        """A committed write changed a fact table: every process's entries are stale."""
        self._entries.clear()
        await self.local.changed(KEY)
        if self.remote is not None:
            await self.remote.changed(KEY)
