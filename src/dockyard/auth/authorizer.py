"""The registry's door in token mode (Docker token authentication).

A request without credentials, with a token that does not verify, or with one that lacks
an access gets ``401`` and ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
(plus ``error="invalid_token"`` or ``error="insufficient_scope"``), so that every client
fetches a token for exactly what it needs (the refusals carry the challenge's parameters as a
:class:`~dockyard.auth.errors.Challenge`; the /v2 edge writes the header). A private
repository answers like one that does not exist. The one ``403``: a valid token of a signed-in
subject that lacks an access the subject holds (it was fetched for a narrower scope), see
:meth:`TokenAuthorizer._narrow`.

Basic credentials on ``/v2`` are accepted too (some clients send them directly); they
are checked against the accounts (cached for 30 seconds per process, keyed by a hash of
the header, and re-checked against the account's login stamp, so that a password change
or a disabled account takes effect at once) and the permissions are evaluated live.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import OrderedDict

from sqlalchemy import ColumnElement

from dockyard.auth.accounts import Accounts
from dockyard.auth.base import Access, Caller, Principal
from dockyard.auth.bearer import looks_like_access_token
from dockyard.auth.errors import AuthenticationFailed, Challenge, InsufficientScope
from dockyard.auth.facts import allowed, pullable
from dockyard.auth.jwt_tokens import InvalidToken, TokenService
from dockyard.auth.policy import ANONYMOUS, Subject

BASIC_CACHE_SECONDS = 30.0


def principal_of(subject: Subject) -> Principal:
    return Principal(subject.name or "anonymous", subject.is_admin, subject.kind, subject.id, subject.scopes)


def subject_of(principal: Principal) -> Subject:
    p = principal
    if p.kind == "user":
        return Subject("user", p.id, p.name, p.is_admin, p.scopes)
    if p.kind == "robot":
        return Subject("robot", p.id, p.name, p.is_admin, p.scopes)
    return ANONYMOUS


def without_controls(text: str) -> bool:
    """Whether ``text`` has no control characters. No login name or client id has them, and
    PostgreSQL cannot even compare a string that holds NUL."""
    return not any(ord(c) < 0x20 or c == "\x7f" for c in text)


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, secret) of Basic credentials; None when they are malformed, which every
    door answers as it answers wrong credentials."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, secret) if sep and without_controls(user) else None


class TokenAuthorizer:
    def __init__(self, accounts: Accounts, tokens: TokenService, public_url: str | None) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.public_url = public_url.rstrip("/") if public_url else None
        self._basic: OrderedDict[str, tuple[float, Subject, str]] = OrderedDict()
        self._principals: dict[Subject, Principal] = {}  # one per subject, not per request

    def realm(self, caller: Caller) -> str:
        base = self.public_url or f"{caller.scheme}://{caller.host or 'localhost'}"
        return f"{base}/auth/token"

    def _challenge(self, caller: Caller, accesses: list[Access], error: str | None = None) -> Challenge:
        return Challenge("Bearer", self.realm(caller), self.tokens.service, tuple(accesses), error)

    def _refuse(
        self, caller: Caller, accesses: list[Access], message: str, error: str | None = None
    ) -> AuthenticationFailed:
        return AuthenticationFailed(message, self._challenge(caller, accesses, error))

    async def authorize(self, caller: Caller, accesses: list[Access]) -> Principal:
        header = caller.authorization
        if not header:
            raise self._refuse(caller, accesses, "authentication required")
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "bearer":
            return await self._bearer(caller, header[7:].strip(), accesses)
        if scheme == "basic":
            return await self._basic_auth(caller, header, accesses)
        raise self._refuse(caller, accesses, "unsupported authorization scheme")

    def catalog_scope(self, principal: Principal) -> ColumnElement[bool]:
        """The repositories ``/v2/_catalog`` lists to ``principal``: those it may pull."""
        return pullable(subject_of(principal), time.time())

    async def _bearer(self, caller: Caller, token: str, accesses: list[Access]) -> Principal:
        try:
            verified = self.tokens.verify(token)
        except InvalidToken as exc:
            raise self._refuse(caller, accesses, f"invalid token: {exc}", "invalid_token") from None
        for access in accesses:
            held = verified.access.get((access.type, access.name), frozenset())
            if not access.actions <= held:
                if not verified.subject.is_anonymous and await self._may(verified.subject, accesses):
                    raise self._narrow(caller, accesses)
                raise self._refuse(caller, accesses, "insufficient scope", "insufficient_scope")
        principal = self._principals.get(verified.subject)
        if principal is None:
            principal = self._principals[verified.subject] = principal_of(verified.subject)
            if len(self._principals) > 4096:
                self._principals.clear()
        return principal

    async def _may(self, subject: Subject, accesses: list[Access]) -> bool:
        """Whether ``subject`` may, right now, do everything ``accesses`` ask (the catalog:
        everyone may list what they may pull)."""
        now = time.time()
        for access in accesses:
            if access.type == "registry":
                ok = access.name == "catalog"
            else:
                ok = access.actions <= (await allowed(self.accounts.db, subject, access.name, now)).actions
            if not ok:
                return False
        return True

    def _narrow(self, caller: Caller, accesses: list[Access]) -> InsufficientScope:
        """A valid token that lacks an access its subject holds: ``403`` with the challenge
        (RFC 6750 section 3.1: insufficient_scope), which tells the client to fetch a new token
        for the challenge's scope. Only signed-in subjects get here (anonymous has nothing
        more to gain), and only when a new token would help, so every client that asks for
        its scopes up front (docker, containerd, containers/image) never sees it, while one
        that re-uses a narrower token for a push does: oras-py drops its token and asks
        again only on a 403."""
        message = "this token does not grant the access; fetch a new token for the scope in WWW-Authenticate"
        return InsufficientScope(message, self._challenge(caller, accesses, "insufficient_scope"))

    async def _basic_auth(self, caller: Caller, header: str, accesses: list[Access]) -> Principal:
        subject = await self._basic_subject(caller, header, accesses)
        if not await self._may(subject, accesses):
            raise self._refuse(caller, accesses, "insufficient scope", "insufficient_scope")
        return principal_of(subject)

    async def _basic_subject(self, caller: Caller, header: str, accesses: list[Access]) -> Subject:
        key = hashlib.sha256(header.encode()).hexdigest()
        now = time.monotonic()
        cached = self._basic.get(key)
        if (
            cached is not None
            and cached[0] > now
            and cached[2] == await self.accounts.login_stamp(cached[1].name)
        ):
            return cached[1]
        credentials = parse_basic(header)
        if credentials is None:
            raise self._refuse(caller, accesses, "malformed basic credentials")
        stamp = await self.accounts.login_stamp(credentials[0])  # read first: a change after it misses
        try:
            subject = await self.accounts.authenticate(*credentials, caller.client_host)
        except AuthenticationFailed as exc:  # Throttled goes on as it is: 429 with Retry-After
            raise self._refuse(caller, accesses, str(exc)) from None
        if looks_like_access_token(credentials[1]) or stamp is None:
            return subject  # token checks are cheap; never serve a revoked token from a cache
        self._basic[key] = (now + BASIC_CACHE_SECONDS, subject, stamp)
        if len(self._basic) > 1024:
            self._basic.popitem(last=False)
        return subject
