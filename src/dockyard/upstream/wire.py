"""The HTTP-level pieces of the upstream client: answers read within a size limit,
authentication challenges, ``Retry-After``, and connection errors told apart (DNS, refused,
TLS, timeout) so the user learns which one it was.

Bodies are read raw: ``Accept-Encoding: identity`` is asked for and a compressed success body
is refused rather than inflated, so no upstream can make us hold more than the limit.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from dockyard.oci.ranges import parse_length
from dockyard.upstream.results import Credentials, Failed, UpstreamFailure

_CHALLENGE_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_DNS_FAILURES = ("name or service not known", "temporary failure in name resolution", "nodename nor servname",
                 "no address associated", "getaddrinfo failed")  # fmt: skip


@dataclass(frozen=True)
class Fetched:
    """One upstream answer, its body read within a limit."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str | None:
        value: str | None = self.headers.get("content-type")
        return value

    def errors(self) -> list[dict[str, Any]]:
        """The ``{"errors": [...]}`` entries of an error body (empty when it has none)."""
        try:
            document = json.loads(self.body)
        except (ValueError, RecursionError):
            return []
        found = document.get("errors") if isinstance(document, dict) else None
        return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []

    def error_codes(self) -> set[str]:
        return {str(entry.get("code", "")).upper() for entry in self.errors()}

    def error_message(self) -> str | None:
        """The first error's message, made safe to show (printable, at most 200 characters)."""
        for entry in self.errors():
            message = entry.get("message")
            if isinstance(message, str) and message.strip():
                clean = "".join(ch if ch.isprintable() else " " for ch in message).strip()
                return clean[:200]
        return None


def parse_challenges(headers: httpx.Headers) -> dict[str, dict[str, str]]:
    """``WWW-Authenticate`` headers as {lowercased scheme: parameters}."""
    found: dict[str, dict[str, str]] = {}
    for header in headers.get_list("www-authenticate"):
        scheme, _, rest = header.strip().partition(" ")
        params = {
            key.lower(): quoted.replace('\\"', '"') if quoted else bare
            for key, quoted, bare in _CHALLENGE_PARAM_RE.findall(rest)
        }
        found.setdefault(scheme.lower(), params)
    return found


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds = parse_length(text)  # ASCII digits only, bounded ("²" and 5,000 digits are no number)
    if seconds is not None:
        return float(seconds)
    if text[:1].isdigit():
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def unreachable(label: str, exc: Exception) -> Failed:
    """A connection-level failure as a Failed: ``tls`` for a certificate or handshake error,
    else ``unreachable`` with ``detail`` dns, connect or timeout."""
    causes = list(_causes(exc))
    text = str(exc)[:200] or type(exc).__name__
    if any(isinstance(c, ssl.SSLError) for c in causes) or "certificate verify failed" in text.lower():
        return Failed(
            "tls",
            f"could not reach {label}: the TLS handshake failed ({text}); if the registry uses a "
            "private certificate authority, add its CA bundle to the registry profile",
            detail="certificate",
        )
    detail = "connect"
    if isinstance(exc, httpx.TimeoutException) or any(isinstance(c, TimeoutError) for c in causes):
        reason, detail = "it did not answer in time", "timeout"
    elif any(isinstance(c, socket.gaierror) for c in causes) or any(m in text.lower() for m in _DNS_FAILURES):
        reason, detail = "its host name does not resolve (DNS)", "dns"
    elif any(isinstance(c, ConnectionRefusedError) for c in causes):
        reason = "the connection was refused (nothing listens there, or a firewall rejects it)"
    elif isinstance(exc, httpx.ConnectError):
        reason = f"the connection failed ({text})"
    else:
        reason = f"the connection broke ({type(exc).__name__}: {text})"
    return Failed(
        "unreachable",
        f"could not reach {label}: {reason}; check the host name and try again later",
        detail=detail,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from (httpcore wraps the OSError, anyio groups them)."""
    pending, seen = [exc], 0
    while pending and seen < 32:
        current = pending.pop()
        seen += 1
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        following = current.__cause__ or current.__context__
        if following is not None:
            pending.append(following)


def invalid(message: str) -> UpstreamFailure:
    """The exception that ends a resolve with an ``invalid`` failure."""
    return UpstreamFailure(Failed("invalid", message))


def basic_authorization(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.secret}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


async def read_bounded(
    response: httpx.Response, limit: int, what: str, label: str, *, truncate: bool
) -> bytes:
    """The raw body, at most ``limit`` bytes; beyond that, truncated or refused."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        if truncate:
            return b""
        raise invalid(f"{label} sent {what} {encoding}-encoded although identity was asked for: refused")
    declared = parse_length(response.headers.get("content-length", ""))
    if not truncate and declared is not None and declared > limit:
        raise invalid(f"{label} sent {what} of {declared} bytes; more than {limit} bytes are refused")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise invalid(f"{label} sent {what} larger than {limit} bytes: refused")
    return bytes(body)
