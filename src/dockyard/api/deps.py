"""Dependencies of the /api/v1 routes: the services and the caller.

Callers authenticate with HTTP Basic (username and password or personal access token),
``Authorization: Bearer <personal access token>``, or, in a browser, the session cookie that
``POST /api/v1/session`` sets (see :mod:`dockyard.api.v1.session`); a request authenticated by
the cookie that is not a plain read must carry the ``X-Dockyard-Web`` header, which no
cross-site form can set. Successful Basic checks are cached
for 30 seconds per process (keyed by a hash of the header), so that scripts that send a
password with every call do not pay for argon2 each time; a cached check still reads the
account's login stamp, so a password change or a disabled account takes effect at once.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request

from dockyard.auth.authorizer import parse_basic
from dockyard.auth.bearer import looks_like_access_token
from dockyard.auth.errors import AuthenticationFailed
from dockyard.auth.policy import ANONYMOUS, Subject
from dockyard.errors import Forbidden
from dockyard.tenancy.services import Identity

CACHE_SECONDS = 30.0
SESSION_COOKIE = "dockyard_session"
WEB_HEADER = "x-dockyard-web"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Authenticator:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._cache: OrderedDict[str, tuple[float, Subject, str]] = OrderedDict()

    async def __call__(self, request: Request) -> Subject:
        header = request.headers.get("authorization")
        if not header:
            return await self._from_cookie(request)
        key = hashlib.sha256(header.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key)
        accounts = self.identity.accounts
        if cached is not None and cached[0] > now and cached[2] == await accounts.login_stamp(cached[1].name):
            return cached[1]
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            token_subject = await self.identity.accounts.from_access_token(value.strip())
            if token_subject is None:
                raise AuthenticationFailed("the token is unknown, or its account is disabled")
            return token_subject
        credentials = parse_basic(header)
        if credentials is None:
            raise AuthenticationFailed("use HTTP Basic credentials or a Bearer personal access token")
        ip = request.client.host if request.client else None
        stamp = await accounts.login_stamp(credentials[0])  # read first: a change after it misses
        subject = await accounts.authenticate(*credentials, ip)
        if looks_like_access_token(credentials[1]) or stamp is None:
            return subject  # token checks are cheap; never serve a revoked token from a cache
        self._cache[key] = (now + CACHE_SECONDS, subject, stamp)
        if len(self._cache) > 1024:
            self._cache.popitem(last=False)
        return subject

    async def _from_cookie(self, request: Request) -> Subject:
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return ANONYMOUS
        if request.method not in SAFE_METHODS and not request.headers.get(WEB_HEADER):
            raise Forbidden(
                "a browser session may change things only from Dockyard's own pages "
                f"(the {WEB_HEADER} header is missing); scripts should use a personal access token"
            )
        try:
            subject = await self.identity.accounts.from_access_token(secret)
        except AuthenticationFailed:  # revoked or expired: for a browser, the session ended
            subject = None
        if subject is None:
            raise AuthenticationFailed("your session has ended; sign in again")
        request.state.signed_in_by_cookie = True
        request.state.session_expires_at = subject.expires_at
        # A session stands for the password it was signed in with: what the user makes in it
        # (a 90-day token, say) is not capped at the session's 12 hours, as a token's would be.
        return replace(subject, expires_at=None)


def signed_in_by_cookie(request: Request) -> bool:
    """Whether the caller was authenticated by the web session cookie."""
    return bool(getattr(request.state, "signed_in_by_cookie", False))


def identity(request: Request) -> Identity:
    found: Identity = request.app.state.identity
    return found


async def caller(request: Request) -> Subject:
    authenticate: Authenticator = request.app.state.authenticator
    return await authenticate(request)


# Anonymous callers may read (public images and repositories, downloads, workspace names).
# Routes that change something refuse them (the services raise ``AuthenticationFailed``),
# except these: (method, route path).
ANONYMOUS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS_CHANGES = frozenset(
    {
        # Whoever sees a public external version may have it checked upstream.
        ("POST", "/images/{name:path}/versions/{version}/verify"),
    }
)


def anonymous_may_call(request: Request) -> bool:
    """Whether the request's route serves anonymous callers at all."""
    if request.method in ANONYMOUS_METHODS:
        return True
    route = request.scope.get("route")  # the matched APIRoute
    return (request.method, getattr(route, "path", None)) in ANONYMOUS_CHANGES


async def require_signed_in(request: Request) -> Subject:
    """The caller, who must be signed in: raises ``AuthenticationFailed`` for an anonymous
    caller or bad credentials (``Throttled`` after too many failed logins)."""
    subject = await caller(request)
    if subject.is_anonymous:
        raise AuthenticationFailed("sign in first")
    return subject


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


Services = Annotated[Identity, Depends(identity)]
Caller = Annotated[Subject, Depends(caller)]
ClientIp = Annotated[str | None, Depends(client_ip)]
