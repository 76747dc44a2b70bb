"""Users, robot logins and their secrets: who a caller is.

``authenticate`` takes what a client sends as Basic credentials: a username with a
password or a personal access token, or ``workspace+robot`` with a robot token. Failures
are counted by :class:`~dockyard.auth.throttle.LoginThrottle` and written to the audit log;
a locked-out login is refused before its password is checked. A remembered password (it
matched this stored hash moments ago) and identical concurrent attempts take no place in the
count (see the throttle's docstring); a token is one lookup of its hash, never cached.

Logging in needs no write to succeed: on a full disk the bookkeeping of a login (last login,
last use of a token, the audit line of a failure) goes to the server's log instead, so that
nobody is locked out of a server whose disk an operator must clean up.
"""

from __future__ import annotations

import datetime
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, Row, or_, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.auth import audit, bearer, token_lookup
from dockyard.auth.errors import AuthenticationFailed, Throttled
from dockyard.auth.flights import Flights
from dockyard.auth.passwords import Passwords, check_strength
from dockyard.auth.policy import Subject
from dockyard.auth.tables import access_tokens, memberships, refresh_tokens, users, workspaces
from dockyard.auth.throttle import LoginThrottle
from dockyard.db.engine import QUIET, Connection, Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.auth")

# A user name is a repository path component, so that it can name a personal workspace.
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
NAME_MAX = 64
WRONG_CREDENTIALS = "wrong username or password"
LAST_USE_SECONDS = 60.0  # a token's last use and a user's last login: to the minute (a write a minute)
RESERVED = frozenset({"v2", "api", "auth", "anonymous", "healthz", "metrics"})


def check_name(name: str, what: str) -> None:
    if not NAME_RE.match(name) or len(name) > NAME_MAX:
        raise Invalid(
            f"{what} {name[:80]!r} is not valid: use lowercase letters and digits, separated by "
            f"single '.', '_' or '-', at most {NAME_MAX} characters (for example 'genomics-lab')"
        )
    if name in RESERVED:
        raise Invalid(f"{what} {name!r} is reserved; choose another")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str | None
    full_name: str | None
    is_admin: bool
    disabled: bool
    created_at: float
    last_login_at: float | None


def _user(row: Row[Any]) -> User:
    m = row._mapping
    return User(
        id=m["id"],
        username=m["username"],
        email=m["email"],
        full_name=m["full_name"],
        is_admin=bool(m["is_admin"]),
        disabled=m["disabled_at"] is not None,
        created_at=m["created_at"],
        last_login_at=m["last_login_at"],
    )


class Accounts:
    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        throttle: LoginThrottle,
        refresh_token_seconds: float = 90 * 86400.0,
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.throttle = throttle
        self.refresh_token_seconds = refresh_token_seconds
        self._flights: Flights[bytes, Subject] = Flights()  # password attempts under way

    # --- authentication -------------------------------------------------------------

    async def authenticate(self, username: str, secret: str, client_ip: str | None) -> Subject:
        """The subject for Basic credentials; raises ``AuthenticationFailed`` or ``Throttled``
        (see :mod:`dockyard.auth.throttle` for which counter refuses what)."""
        if "+" in username or bearer.looks_like_access_token(secret):
            try:
                subject = await self.from_access_token(secret, expect_user=username)
            except AuthenticationFailed as exc:  # an expired or revoked token: say which
                raise await self._refusal(username, client_ip, str(exc)) from None
            if subject is None:
                raise await self._refusal(username, client_ip, WRONG_CREDENTIALS)
            return subject
        async with self.db.read() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username.lower()))).first()
        # A password that matched this very stored hash moments ago is no guess: no
        # reservation and no argon2, unless the name is locked from this address.
        remembered = row is not None and self._remembered(row, secret)
        if row is not None and remembered and await self.throttle.user_lock(username, client_ip) is None:
            return await self._logged_in(_user(row))
        key = self.passwords.mac(f"{username.lower()}\0{client_ip}", secret)
        return await self._flights.run(key, lambda: self._password_attempt(username, secret, client_ip, row))

    def _remembered(self, row: Row[Any], password: str) -> bool:
        m = row._mapping
        encoded = m["password_hash"]
        return (
            encoded is not None and m["disabled_at"] is None and self.passwords.remembered(encoded, password)
        )

    async def _password_attempt(
        self, username: str, password: str, client_ip: str | None, row: Row[Any] | None
    ) -> Subject:
        attempt = await self.throttle.reserve(username, client_ip)
        subject = await self._password_login(password, client_ip, row)
        if subject is None:
            locked = attempt.number >= self.throttle.policy.max_failures
            raise await self._refusal(username, client_ip, WRONG_CREDENTIALS, locked)
        await self.throttle.succeeded(username, client_ip)
        return subject

    async def _refusal(
        self, username: str, client_ip: str | None, message: str, locked: bool = False
    ) -> AuthenticationFailed | Throttled:
        """Count and log a failed login; the error to raise: ``Throttled`` once the address
        is past its limit (for every name alike, so that the answer tells no names apart),
        else ``AuthenticationFailed(message)``."""
        limit = self.throttle.policy.max_failures_per_ip
        address = await self.throttle.failed(client_ip)
        locked = locked or address.number == limit
        action = "login.locked" if locked else "login.failed"
        try:
            async with self.db.write() as conn:
                await audit.record(conn, None, action, target=username[:100], client_ip=client_ip)
        except InsufficientStorage as exc:
            log.warning("audit: %s of %r from %s not recorded: %s", action, username[:100], client_ip, exc)
        wait = address.remaining(self.throttle.clock())
        if address.number > limit and wait is not None:
            return Throttled(wait)
        return AuthenticationFailed(message)

    async def _password_login(
        self, password: str, client_ip: str | None, row: Row[Any] | None
    ) -> Subject | None:
        if row is None and await self.throttle.address_lock(client_ip) is not None:
            return None  # no real name behind it: no password to check for a flood of made-up names
        encoded = None if row is None else row._mapping["password_hash"]
        if not await self.passwords.verify(encoded, password) or row is None:
            return None
        user = _user(row)
        return None if user.disabled else await self._logged_in(user)

    async def _logged_in(self, user: User) -> Subject:
        now, last = time.time(), user.last_login_at
        if last is None or not now - LAST_USE_SECONDS < last <= now:  # to the minute, as tokens
            await self._note(
                "the last login",
                update(users)
                .where(users.c.id == user.id)
                .values(last_login_at=now)
                .execution_options(**{QUIET: True}),
            )
        return Subject("user", user.id, user.username, is_admin=user.is_admin)

    async def _note(self, what: str, statement: Executable) -> None:
        """Bookkeeping that a login does not depend on: skipped (and logged) on a full disk."""
        try:
            async with self.db.write() as conn:
                await conn.execute(statement)
        except InsufficientStorage as exc:
            log.warning("%s was not recorded: %s", what, exc)

    async def from_access_token(self, secret: str, expect_user: str | None = None) -> Subject | None:
        """The subject of a personal access or robot token; None for an unknown token, one of
        another user or of a disabled account; ``AuthenticationFailed`` saying why for an
        expired or revoked one."""
        return await self._from_token_hash(bearer.digest(secret), expect_user)

    async def _from_token_hash(self, token_hash: str, expect_user: str | None = None) -> Subject | None:
        now = time.time()
        m = await token_lookup.find(self.db, token_hash)
        if m is None:
            return None
        scopes = frozenset(m["scopes"].split(","))
        if m["user_id"] is not None:
            if m["disabled_at"] is not None:
                return None
            if expect_user is not None and expect_user.lower() != m["username"]:
                return None
            subject = Subject(
                "user", m["user_id"], m["username"], bool(m["is_admin"]), scopes, m["id"], m["expires_at"]
            )
        else:
            name = f"{m['workspace_name']}+{m['robot_name']}"
            if m["robot_disabled_at"] is not None or (expect_user is not None and expect_user != name):
                return None
            subject = Subject("robot", m["robot_id"], name, False, scopes, m["id"], m["expires_at"])
        # Whoever holds the secret may learn why it no longer works (it proves they were given it).
        if m["revoked_at"] is not None:
            raise AuthenticationFailed(f"this token was revoked on {_utc(m['revoked_at'])}; create a new one")
        if m["expires_at"] is not None and m["expires_at"] <= now:
            raise AuthenticationFailed(f"this token expired on {_utc(m['expires_at'])}; create a new one")
        last_used = m["last_used_at"]
        if last_used is None or not now - LAST_USE_SECONDS < last_used <= now:
            # One write a minute per token at most: a write per use was most of what a token
            # login cost (a database write transaction per ``docker login`` or token request).
            await self._note(
                "a token's last use",
                update(access_tokens)
                .where(access_tokens.c.id == m["id"])
                .values(last_used_at=now)
                .execution_options(**{QUIET: True}),
            )
        return subject

    async def _robot_login(self, login: str, secret: str) -> Subject | None:
        return await self.from_access_token(secret, expect_user=login)

    # --- refresh tokens (Docker's identity tokens) -----------------------------------

    async def issue_refresh_token(self, subject: Subject, client_id: str) -> str:
        secret = bearer.new_secret(bearer.REFRESH_PREFIX)
        now = time.time()
        expires = now + self.refresh_token_seconds
        if subject.expires_at is not None:
            expires = min(expires, subject.expires_at)
        async with self.db.write() as conn:
            await conn.execute(
                refresh_tokens.insert().values(
                    user_id=subject.id if subject.kind == "user" else None,
                    robot_id=subject.id if subject.kind == "robot" else None,
                    access_token_id=subject.token_id,
                    token_hash=bearer.digest(secret),
                    client_id=client_id[:100],
                    created_at=now,
                    expires_at=expires,
                )
            )
        return secret

    async def revoke_refresh_token(self, secret: str) -> None:
        """End one refresh token now (a build's, when the build is over)."""
        live = (refresh_tokens.c.token_hash == bearer.digest(secret), refresh_tokens.c.revoked_at.is_(None))
        async with self.db.write() as conn:
            await conn.execute(update(refresh_tokens).where(*live).values(revoked_at=time.time()))

    async def from_refresh_token(self, secret: str) -> Subject | None:
        now = time.time()
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(refresh_tokens).where(refresh_tokens.c.token_hash == bearer.digest(secret))
                )
            ).first()
        if row is None:
            return None
        m = row._mapping
        if m["revoked_at"] is not None or m["expires_at"] <= now:
            return None
        if m["access_token_id"] is not None:
            return await self._token_secretless(m["access_token_id"])
        async with self.db.read() as conn:
            user = (await conn.execute(select(users).where(users.c.id == m["user_id"]))).first()
        if user is None or user._mapping["disabled_at"] is not None:
            return None
        u = _user(user)
        return Subject("user", u.id, u.username, is_admin=u.is_admin)

    async def _token_secretless(self, token_id: int) -> Subject | None:
        """The subject of a stored access token, checked as at login (for refresh tokens made from one)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(access_tokens.c.token_hash).where(access_tokens.c.id == token_id))
            ).first()
        return None if row is None else await self._from_token_hash(row[0])

    # --- users --------------------------------------------------------------------

    async def get_user(self, username: str) -> User:
        async with self.db.read() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        if row is None:
            raise NotFound(f"user {username!r} not found")
        return _user(row)

    async def get_user_by_id(self, user_id: int) -> User:
        async with self.db.read() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return _user(row)

    async def list_users(self, *, search: str = "", last: str = "", limit: int = 1000) -> list[User]:
        """Users in name order, ``limit`` after ``last``; ``search`` matches a part of the name,
        full name or email, any case. Paged on the username index (keyset), in the database."""
        stmt = select(users).where(users.c.username > last).order_by(users.c.username).limit(limit)
        if search:
            stmt = stmt.where(
                or_(
                    users.c.username.icontains(search, autoescape=True),
                    users.c.full_name.icontains(search, autoescape=True),
                    users.c.email.icontains(search, autoescape=True),
                )
            )
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_user(row) for row in rows]

    async def create_user(
        self,
        actor: Subject | None,
        username: str,
        password: str | None,
        *,
        email: str | None = None,
        full_name: str | None = None,
        is_admin: bool = False,
        client_ip: str | None = None,
    ) -> User:
        """A user and their personal workspace (named after them, private by default)."""
        check_name(username, "username")
        if password is not None and (problem := check_strength(password, username)):
            raise Invalid(problem)
        encoded = None if password is None else await self.passwords.hash_async(password)
        now = time.time()
        async with self.db.write() as conn:
            if await _name_taken(conn, username):
                raise Conflict(f"the name {username!r} is taken by a user or a workspace")
            user_id = (
                await conn.execute(
                    users.insert()
                    .values(
                        username=username,
                        email=email,
                        full_name=full_name,
                        password_hash=encoded,
                        is_admin=is_admin,
                        created_at=now,
                    )
                    .returning(users.c.id)
                )
            ).scalar_one()
            ws_id = (
                await conn.execute(
                    workspaces.insert()
                    .values(
                        name=username,
                        kind="personal",
                        personal_user_id=user_id,
                        default_visibility="private",
                        created_at=now,
                        created_by=user_id,
                    )
                    .returning(workspaces.c.id)
                )
            ).scalar_one()
            await conn.execute(
                memberships.insert().values(workspace_id=ws_id, user_id=user_id, role="owner", created_at=now)
            )
            await audit.record(
                conn,
                actor,
                "user.create",
                workspace_id=ws_id,
                target=username,
                client_ip=client_ip,
                detail={"admin": is_admin},
            )
        return await self.get_user(username)

    async def update_user(
        self,
        actor: Subject,
        username: str,
        *,
        password: str | None = None,
        email: str | None = None,
        full_name: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
        client_ip: str | None = None,
    ) -> User:
        user = await self.get_user(username)
        values: dict[str, object] = {}
        if password is not None:
            if problem := check_strength(password, username):
                raise Invalid(problem)
            values["password_hash"] = await self.passwords.hash_async(password)
        if email is not None:
            values["email"] = email
        if full_name is not None:
            values["full_name"] = full_name
        if is_admin is not None:
            values["is_admin"] = is_admin
        if disabled is not None:
            values["disabled_at"] = time.time() if disabled else None
        if not values:
            return user
        async with self.db.write() as conn:
            if is_admin is False or disabled:
                await _keep_an_admin(conn, user.id)
            await conn.execute(update(users).where(users.c.id == user.id).values(**values))
            if password is not None or disabled:
                # A new password or a disabled account ends every "remember me" login.
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.user_id == user.id, refresh_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=time.time())
                )
            changed = sorted(k for k in values if k != "password_hash") + (["password"] if password else [])
            await audit.record(
                conn, actor, "user.update", target=username, client_ip=client_ip, detail={"changed": changed}
            )
        return await self.get_user(username)

    async def ensure_admin(self, username: str, password: str) -> bool:
        """Create the first admin unless a user of that name exists; True if created."""
        try:
            await self.create_user(None, username, password, is_admin=True)
        except (Conflict, IntegrityError):  # another worker won the race
            return False
        return True

    async def login_stamp(self, username: str) -> str | None:
        """What a cached password check depends on: None for an unknown or disabled user,
        and a new value after a password change (new salted hash) or an admin-rights change."""
        stmt = select(users.c.password_hash, users.c.is_admin, users.c.disabled_at).where(
            users.c.username == username.lower()
        )
        async with self.db.read() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None or row.disabled_at is not None or row.password_hash is None:
            return None
        return f"{row.password_hash}|{bool(row.is_admin)}"

    async def count_admins(self) -> int:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(users.c.id).where(users.c.is_admin.is_(True)))).all()
        return len(rows)


async def _keep_an_admin(conn: Connection, user_id: int) -> None:
    """Refuse to demote or disable ``user_id`` if no other enabled admin would be left: an
    installation without one cannot be repaired from the API, and a restart does not
    create a new one. The admins' rows stay locked until the change commits (PostgreSQL;
    SQLite runs one writer at a time), so two admins demoting each other at once cannot
    both succeed."""
    active = (users.c.is_admin.is_(True), users.c.disabled_at.is_(None))
    admins = (await conn.execute(select(users.c.id).where(*active).with_for_update())).scalars().all()
    if user_id in admins and len(admins) == 1:
        raise Conflict("this is the last admin; make another user an admin first")


def _utc(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _name_taken(conn: Connection, name: str) -> bool:
    user = (await conn.execute(select(users.c.id).where(users.c.username == name))).first()
    ws = (await conn.execute(select(workspaces.c.id).where(workspaces.c.name == name))).first()
    return user is not None or ws is not None
