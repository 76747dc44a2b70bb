"""The /api/v1 client the identity commands share.

The server comes from ``--server``/``DOCKYARD_URL``, else the stored login. The token comes
from ``DOCKYARD_TOKEN``, else the stored login, but only when the stored login is for that
same server (a token is never sent to another one). Calls authenticate with
``Authorization: Bearer <personal access token>``. Failures become :class:`ApiError` with
the problem document's ``detail``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from dockyard import __version__
from dockyard.cli import config
from dockyard.cli.errors import ApiError, CliError

TOKEN_ENV = "DOCKYARD_TOKEN"  # noqa: S105  # the variable's name, not a secret
SERVER_ENV = "DOCKYARD_URL"


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None
    login: config.Login | None  # the stored login, when it is for this server


class _Globals:
    server: str | None = None  # the global --server (or DOCKYARD_URL); set by the root command


def use_server(url: str | None) -> None:
    _Globals.server = url


def resolve(url: str | None = None) -> Target:
    stored = config.load(config.config_path())
    chosen = url or _Globals.server or (stored.url if stored else None)
    if not chosen:
        raise CliError(
            "no server given",
            hint="run 'dockyard login URL', or pass --server URL (or set DOCKYARD_URL)",
            exit_code=2,
        )
    chosen = config.normalize_url(chosen)
    mine = stored if stored is not None and stored.url == chosen else None
    token = os.environ.get(TOKEN_ENV) or (mine.token if mine and mine.token else None)
    return Target(chosen, token, mine)


def seg(value: str | int) -> str:
    """A value for one URL path segment (names never escape their segment)."""
    return quote(str(value), safe="")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        # Validation problems name their field like "body.password"; the field is enough.
        detail = re.sub(r"(^|; )(?:body|query|path)\.", r"\1", str(body["detail"]))
        reason = body.get("reason")  # upstream failures: unauthorized, tls, rate_limited, ...
        return f"{reason}: {detail}" if isinstance(reason, str) and reason else detail
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def _hint(status: int, authenticated: bool) -> str | None:
    if status == 401:
        return (
            "your token is not valid any more: run 'dockyard login'"
            if authenticated
            else "log in first: run 'dockyard login URL'"
        )
    if status == 429:
        return "too many failed logins; wait and try again"
    return None


class Client:
    """/api/v1 of one server, as one caller."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        headers = {"User-Agent": f"dockyard-cli/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.authenticated = bool(token or basic)
        self.http = httpx.Client(
            base_url=f"{url}/api/v1", headers=headers, auth=basic, timeout=60, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.request(method, path, params=query, json=json)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.url}: {exc or type(exc).__name__}") from None
        if response.status_code >= 400:
            if response.status_code == 404 and "json" not in response.headers.get("content-type", ""):
                raise CliError(f"{self.url} does not look like a Dockyard server (no /api/v1)")
            raise ApiError(
                response.status_code,
                _detail(response),
                hint=_hint(response.status_code, self.authenticated),
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{self.url} answered {method} {path} with something other than JSON") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.call("POST", path, params=params, json=body if body is not None else {})

    def put(self, path: str, body: Any, **params: Any) -> Any:
        return self.call("PUT", path, params=params, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, json=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.call("DELETE", path, params=params)


def connect() -> Client:
    """A client for the chosen server with the chosen token (anonymous if there is none)."""
    target = resolve()
    return Client(target.url, target.token)
