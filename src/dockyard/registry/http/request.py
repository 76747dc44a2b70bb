"""A minimal view of an ASGI HTTP request, enough for the registry's handlers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope

from dockyard.auth.base import Caller
from dockyard.registry.errors import ManifestTooLarge
from dockyard.registry.http.errors import ErrorCode, RegistryError
from dockyard.registry.uploads import BodyInterrupted

_LENGTH_RE = re.compile(r"[0-9]{1,19}")


class Request:
    __slots__ = ("_headers", "_query", "params", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str]) -> None:
        self.scope = scope
        self.receive = receive
        self.params = params
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            headers: dict[str, str] = {}
            for raw_name, raw_value in self.scope["headers"]:
                name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
                # Repeated fields (containers/image sends one Accept line per type) combine.
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        return self._query

    @property
    def client_host(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def caller(self) -> Caller:
        return Caller(
            self.header("authorization"),
            self.client_host,
            self.header("host"),
            str(self.scope.get("scheme", "http")),
        )

    def content_length(self) -> int | None:
        raw = self.header("content-length")
        if raw is None:
            return None
        # ASCII digits, at most 19 (int64): str.isdigit also takes "\u00b2", which int() refuses.
        if _LENGTH_RE.fullmatch(raw) is None:
            raise RegistryError(ErrorCode.SIZE_INVALID, f"invalid Content-Length {raw[:40]!r}")
        return int(raw)

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                raise BodyInterrupted
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def read(self, limit: int) -> bytes:
        """The whole body; :class:`ManifestTooLarge` past ``limit`` bytes (only manifests are read whole)."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise ManifestTooLarge(f"body is {declared} bytes; the limit is {limit}")
        parts = bytearray()
        async for chunk in self.body():
            parts += chunk
            if len(parts) > limit:
                raise ManifestTooLarge(f"body exceeds the limit of {limit} bytes")
        return bytes(parts)
