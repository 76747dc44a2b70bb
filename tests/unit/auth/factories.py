"""Building identity state for service tests: the services on a real database, users,
repositories, and a clock the login throttle reads instead of the real one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select, update

from dockyard.auth import audit
from dockyard.auth.accounts import Accounts
from dockyard.auth.audit import AuditEntry
from dockyard.auth.passwords import Passwords
from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.auth.throttle import LoginThrottle, ThrottlePolicy
from dockyard.auth.token_server import TokenServer
from dockyard.auth.tokens import Tokens
from dockyard.db.engine import Database
from dockyard.registry.repositories import ensure_id
from dockyard.tenancy.repositories import Repositories
from dockyard.tenancy.requests import AccessRequests
from dockyard.tenancy.workspaces import Workspaces

PASSWORD = "correct horse battery"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingPasswords(Passwords):
    """Cheap argon2 parameters (tests only), and a count of password verifications."""

    def __init__(self) -> None:
        super().__init__(memory_kib=8, time_cost=1)
        self.verified = 0

    async def verify(self, encoded: str | None, password: str) -> bool:
        self.verified += 1
        return await super().verify(encoded, password)


@dataclass
class Env:
    db: Database
    clock: FakeClock
    passwords: CountingPasswords
    throttle: LoginThrottle
    accounts: Accounts
    workspaces: Workspaces
    tokens: Tokens
    repositories: Repositories
    requests: AccessRequests
    token_server: TokenServer


@asynccontextmanager
async def open_env(
    database_url: str, policy: ThrottlePolicy | None = None, refresh_token_seconds: float = 3600.0
) -> AsyncIterator[Env]:
    db = Database(database_url)
    clock = FakeClock()
    passwords = CountingPasswords()
    throttle = LoginThrottle(db, policy or ThrottlePolicy(), clock)
    try:
        yield Env(
            db=db,
            clock=clock,
            passwords=passwords,
            throttle=throttle,
            accounts=Accounts(db, passwords, throttle, refresh_token_seconds),
            workspaces=Workspaces(db),
            tokens=Tokens(db),
            repositories=Repositories(db),
            requests=AccessRequests(db),
            token_server=TokenServer(db),
        )
    finally:
        await db.dispose()


async def new_user(env: Env, name: str, *, admin: bool = False, password: str = PASSWORD) -> Subject:
    """A user (and their personal workspace), as the subject a password login yields."""
    user = await env.accounts.create_user(None, name, password, is_admin=admin)
    return Subject("user", user.id, user.username, is_admin=user.is_admin)


async def new_repository(env: Env, name: str, visibility: str | None = None) -> int:
    """A repository row as the registry makes it on first push (its workspace must exist
    unless an admin pushes); ``visibility`` overrides the workspace default."""
    async with env.db.write() as conn:
        repo_id = await ensure_id(env.db, conn, name)
        if visibility is not None:
            await conn.execute(
                update(repositories).where(repositories.c.id == repo_id).values(visibility=visibility)
            )
    return repo_id


async def visibility_of(env: Env, name: str) -> str:
    async with env.db.read() as conn:
        row = (await conn.execute(select(repositories.c.visibility).where(repositories.c.name == name))).one()
    return str(row[0])


async def audit_log(env: Env, action: str | None = None) -> list[AuditEntry]:
    """Audit entries, oldest first."""
    return list(reversed(await audit.query(env.db, action=action, limit=1000)))
