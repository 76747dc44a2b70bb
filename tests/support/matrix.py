"""Helpers for the permission matrix test (``tests/functional/auth/test_matrix.py``).

:class:`MatrixClient` sends one registry request the way docker and podman do: first
without credentials, then, on the ``401`` Bearer challenge, it fetches a token from the
realm with Basic credentials (or anonymously) for the challenge's scope plus any scope the
client adds itself (a mount's source), and retries with it. It keeps every step, so a test
can look at the challenge, the token endpoint's answer and the final response. In ``basic``
mode it sends Basic credentials straight to ``/v2`` instead.

:func:`expire_grants` moves a user's repository grants into the past in the server's
database, below the HTTP edge, so that "an expired grant" needs no waiting.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dockyard.auth.grant_cache import GrantCache, machine_generations
from tests.support.identity import jwt_claims, parse_challenge
from tests.support.servers import RunningRegistry

Mode = Literal["token", "basic"]


@dataclass(frozen=True)
class Login:
    """Basic credentials as a client holds them; ``username=None`` is anonymous."""

    username: str | None
    secret: str = ""

    def header(self) -> dict[str, str]:
        if self.username is None:
            return {}
        return {"Authorization": httpx.BasicAuth(self.username, self.secret)._auth_header}


@dataclass
class Exchange:
    """One request as the client lived it."""

    first: httpx.Response | None = None  # the attempt without credentials (token mode)
    token_status: int | None = None  # the token endpoint's status (token mode)
    token_body: dict[str, Any] | None = None
    final: httpx.Response | None = None  # None when the token endpoint refused
    scopes: tuple[str, ...] = ()  # what was asked of the token endpoint

    def granted(self) -> list[dict[str, Any]]:
        """The token's ``access`` claim (empty without a token)."""
        if not self.token_body:
            return []
        access: list[dict[str, Any]] = jwt_claims(self.token_body["token"]).get("access", [])
        return access

    def actions_on(self, kind: str, name: str) -> set[str]:
        found: set[str] = set()
        for entry in self.granted():
            if entry.get("type") == kind and entry.get("name") == name:
                found |= set(entry.get("actions", []))
        return found


@dataclass
class MatrixClient:
    """Registry requests as one subject, in token or basic mode."""

    base_url: str
    login: Login
    mode: Mode = "token"
    http: httpx.Client = field(init=False)
    _tokens: dict[tuple[str, ...], tuple[int, dict[str, Any] | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=60)

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
        extra_scopes: tuple[str, ...] = (),
    ) -> Exchange:
        base_headers = dict(headers or {})
        if self.mode == "basic":
            response = self.http.request(
                method, path, content=content, headers={**base_headers, **self.login.header()}
            )
            return Exchange(final=response)
        first = self.http.request(method, path, content=content, headers=base_headers)
        exchange = Exchange(first=first, final=first)
        if first.status_code != 401:
            return exchange
        scheme, params = parse_challenge(first.headers.get("www-authenticate", ""))
        if scheme != "Bearer" or "realm" not in params:
            return exchange
        scopes = tuple(s for s in (params.get("scope", ""), *extra_scopes) if s)
        exchange.scopes = scopes
        if scopes not in self._tokens:
            query = httpx.QueryParams(
                [("service", params.get("service", "")), *(("scope", s) for s in scopes)]
            )
            token_response = self.http.get(params["realm"], params=query, headers=self.login.header())
            body = token_response.json() if token_response.status_code == 200 else None
            self._tokens[scopes] = (token_response.status_code, body)
        exchange.token_status, exchange.token_body = self._tokens[scopes]
        if exchange.token_body is None:
            exchange.final = None
            return exchange
        bearer = {**base_headers, "Authorization": f"Bearer {exchange.token_body['token']}"}
        exchange.final = self.http.request(method, path, content=content, headers=bearer)
        return exchange


def normalised(exchange: Exchange, names: dict[str, str]) -> dict[str, Any]:
    """What a client could compare between two exchanges, with repository names replaced
    by placeholders (``names`` maps a name to its placeholder). Upload locations and ids
    are left out: they differ between any two sessions."""

    def clean(value: str) -> str:
        for name, placeholder in sorted(names.items(), key=lambda item: -len(item[0])):
            value = value.replace(name, placeholder)
        return value

    def response(r: httpx.Response | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {
            "status": r.status_code,
            "content-type": r.headers.get("content-type"),
            "www-authenticate": clean(r.headers.get("www-authenticate", "")),
            "body": clean(r.text),
        }

    access = sorted(
        ({**entry, "name": clean(str(entry.get("name", "")))} for entry in exchange.granted()),
        key=lambda entry: (str(entry.get("type")), str(entry["name"])),
    )
    return {
        "first": response(exchange.first),
        "token_status": exchange.token_status,
        "token_access": access,
        "final": response(exchange.final),
    }


def expire_grants(registry: RunningRegistry, username: str) -> int:
    """Move every repository grant of ``username`` one minute into the past, in the
    server's own database (SQLite file or PostgreSQL). Returns how many rows changed."""
    return server_execute(
        registry,
        "UPDATE repository_grants SET expires_at = :past "
        "WHERE user_id = (SELECT id FROM users WHERE username = :username)",
        {"past": time.time() - 60, "username": username},
    )


def expire_token(registry: RunningRegistry, token_id: int) -> int:
    """Make a personal access or robot token expire one minute ago (as time would)."""
    return server_execute(
        registry,
        "UPDATE access_tokens SET expires_at = :past WHERE id = :id",
        {"past": time.time() - 60, "id": token_id},
    )


async def announce_auth_change(registry: RunningRegistry) -> None:
    """Tell the server's token caches that a permission fact changed behind its back (as it
    tells them of its own writes)."""
    await GrantCache(machine_generations(registry.data_dir)).changed()


def server_execute(registry: RunningRegistry, sql: str, params: dict[str, Any]) -> int:
    """Run one statement in the server's own database; how many rows it changed. The server's
    caches of permission facts are told, as the server tells them of its own writes."""
    url = registry.database_url or f"sqlite+aiosqlite:///{(registry.data_dir / 'dockyard.db').resolve()}"

    async def run() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params)
                changed = int(result.rowcount)
        finally:
            await engine.dispose()
        await announce_auth_change(registry)
        return changed

    return asyncio.run(run())
