"""``/auth/token``: the Docker token endpoint (GET with Basic credentials, POST with the
OAuth2 password and refresh-token grants), and ``/auth/jwks.json``.

GET (token.md): ``service``, repeated ``scope``, optional ``offline_token=true`` and
``client_id``; no credentials gives an anonymous token. POST (oauth.md): a form with
``grant_type`` ``password`` or ``refresh_token``, ``service``, ``client_id``,
``access_type=offline`` and one space-separated ``scope``. Wrong credentials get 401,
too many failures 429 with ``Retry-After``.

Issuing a token writes nothing that it depends on, so logging in works on a full disk: an
offline (refresh) token that cannot be stored is left out of the answer, and clients keep
using the credentials they have. Any other write that finds no space answers 507.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.auth.authorizer import parse_basic, without_controls
from dockyard.auth.bearer import looks_like_access_token
from dockyard.auth.errors import AuthenticationFailed, Throttled
from dockyard.auth.grant_cache import GrantCache, Granted
from dockyard.auth.policy import ANONYMOUS, Subject
from dockyard.auth.token_server import parse_scopes
from dockyard.tenancy.services import Identity
from dockyard.volumes import InsufficientStorage

MAX_FORM_BYTES = 64 * 1024
log = logging.getLogger("dockyard.auth")


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _auth_error(exc: Exception) -> Response:
    if isinstance(exc, Throttled):
        return _error(429, "too_many_requests", str(exc), {"Retry-After": str(int(exc.retry_after) + 1)})
    return _error(
        401,
        "invalid_grant" if not isinstance(exc, AuthenticationFailed) else "unauthorized",
        str(exc),
        {"WWW-Authenticate": 'Basic realm="dockyard"'},
    )


class TokenEndpoint:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def routes(self) -> list[Route]:
        return [
            Route("/auth/token", self.token, methods=["GET", "POST"]),
            Route("/auth/jwks.json", self.jwks, methods=["GET"]),
        ]

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.identity.keys.public_jwks())

    async def token(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                return await self._post(request)
            return await self._get(request)
        except InsufficientStorage as exc:
            log.warning("%s /auth/token: %s (%s)", request.method, exc, exc.__cause__)
            return _error(507, "temporarily_unavailable", str(exc))

    def _service_ok(self, service: str | None) -> bool:
        return not service or service == self.identity.jwt.service

    async def _get(self, request: Request) -> Response:
        params = request.query_params
        if not self._service_ok(params.get("service")):
            return _error(400, "invalid_request", f"this server's service is {self.identity.jwt.service!r}")
        header = request.headers.get("authorization")
        subject: Subject = ANONYMOUS
        offline = params.get("offline_token", "").lower() == "true"
        scope_values = params.getlist("scope")
        client_id = params.get("client_id", "")
        cache = self.identity.token_server.cache
        cached: tuple[GrantCache, str, int] | None = None
        if header:
            credentials = parse_basic(header)
            if credentials is None:
                return _error(
                    401,
                    "unauthorized",
                    "send HTTP Basic credentials",
                    {"WWW-Authenticate": 'Basic realm="dockyard"'},
                )
            if cache is not None and looks_like_access_token(credentials[1]):
                key = cache.key(header, scope_values)
                generation, hit = cache.get(key)
                if hit is not None:
                    return await self._answer(
                        hit.subject, scope_values, offline, client_id, post=False, granted=hit
                    )
                cached = (cache, key, generation)
            try:
                subject = await self.identity.accounts.authenticate(*credentials, _client_ip(request))
            except (AuthenticationFailed, Throttled) as exc:
                return _auth_error(exc)
        return await self._answer(
            subject,
            scope_values,
            offline and not subject.is_anonymous,
            client_id,
            post=False,
            cache_as=cached,
        )

    async def _post(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _error(400, "invalid_request", "form too large")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if not self._service_ok(form.get("service")):
            return _error(400, "invalid_request", f"this server's service is {self.identity.jwt.service!r}")
        grant_type = form.get("grant_type", "")
        client_id = form.get("client_id", "")
        accounts = self.identity.accounts
        subject: Subject | None
        offline = form.get("access_type", "") == "offline"
        refresh_in = None
        if grant_type == "password":
            username = form.get("username", "")
            if not without_controls(username):
                return _auth_error(AuthenticationFailed("wrong username or password"))
            try:
                subject = await accounts.authenticate(username, form.get("password", ""), _client_ip(request))
            except (AuthenticationFailed, Throttled) as exc:
                return _auth_error(exc)
        elif grant_type == "refresh_token":
            refresh_in = form.get("refresh_token", "")
            try:
                subject = await accounts.from_refresh_token(refresh_in)
            except AuthenticationFailed as exc:  # made from a token that has expired or was revoked
                return _error(401, "invalid_grant", str(exc))
            if subject is None:
                return _error(401, "invalid_grant", "the refresh token is unknown, expired or revoked")
        else:
            return _error(400, "unsupported_grant_type", "grant_type is 'password' or 'refresh_token'")
        response = await self._answer(
            subject, [form.get("scope", "")], offline, client_id, post=True, refresh=refresh_in
        )
        return response

    async def _answer(
        self,
        subject: Subject,
        scope_values: list[str],
        offline: bool,
        client_id: str,
        *,
        post: bool,
        refresh: str | None = None,
        granted: Granted | None = None,
        cache_as: tuple[GrantCache, str, int] | None = None,
    ) -> Response:
        """The token for ``subject``; ``granted``: the grants found in the cache, ``cache_as``:
        where to keep the grants decided here (a token login that asked no refresh token)."""
        if not without_controls(client_id):  # it is stored with a refresh token
            return _error(400, "invalid_request", "client_id must not contain control characters")
        if granted is not None:
            grants, cap = granted.grants, granted.cap
        else:
            grants, cap = await self.identity.token_server.grants(subject, parse_scopes(scope_values))
            if cache_as is not None:
                cache, key, generation = cache_as
                cache.put(key, generation, Granted(subject, grants, cap))
        issued = self.identity.jwt.issue(subject, grants, cap)
        body: dict[str, Any] = {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": datetime.datetime.fromtimestamp(issued.issued_at, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        if post:
            body["scope"] = " ".join(
                f"{g.type}:{g.name}:{','.join(sorted(g.actions))}" for g in grants if g.actions
            )
        if refresh is not None:
            body["refresh_token"] = refresh
        elif offline:
            try:
                body["refresh_token"] = await self.identity.accounts.issue_refresh_token(subject, client_id)
            except InsufficientStorage as exc:
                log.warning("no refresh token for %s: %s", subject.name, exc)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
