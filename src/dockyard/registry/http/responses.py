"""Writing responses: small bodies, JSON, and files (zero-copy where the server allows)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Scope, Send

from dockyard.registry.errors import BlobUnknown
from dockyard.storage.base import LocalFile, PathNotFound

API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
_CHUNK = 4 * 1024 * 1024
ZEROCOPY = "http.response.zerocopy"


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [API_VERSION, *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())]


async def send_bytes(
    send: Send, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    all_headers = dict(headers or {})
    all_headers.setdefault("Content-Length", str(len(body)))
    await send({"type": "http.response.start", "status": status, "headers": _encode(all_headers)})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    await send_bytes(send, status, body, all_headers)


async def send_file(
    send: Send,
    scope: Scope,
    status: int,
    local: LocalFile,
    offset: int,
    length: int,
    headers: dict[str, str],
) -> None:
    """Send ``length`` bytes of ``local`` from ``offset``.

    With the ``http.response.zerocopy`` extension (Dockyard's server protocol provides it)
    the kernel copies the file to the socket with sendfile; otherwise 4 MiB reads.
    """
    if scope["method"] == "HEAD" or length == 0:
        await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
        await send({"type": "http.response.body", "body": b""})
        return
    try:
        fd = os.open(local.path, os.O_RDONLY)  # before the head: a vanished file is still a clean error
    except FileNotFoundError:
        raise BlobUnknown("the blob's bytes are gone (collected?)") from None
    try:
        await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
        if ZEROCOPY in scope.get("extensions", {}):
            with os.fdopen(os.dup(fd), "rb") as file:
                await send({"type": ZEROCOPY, "file": file, "offset": offset, "count": length})
            return
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(os.pread, fd, min(_CHUNK, remaining), offset)
            if not chunk:
                raise RuntimeError(f"{local.path} is shorter than expected")
            offset += len(chunk)
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
    finally:
        os.close(fd)


async def send_stream(
    send: Send, scope: Scope, status: int, chunks: AsyncIterator[bytes], length: int, headers: dict[str, str]
) -> None:
    """Send ``length`` bytes read from a storage driver's reader (a driver with no local file,
    such as S3). The first chunk is read before the head, so a vanished blob is a clean error."""
    if scope["method"] == "HEAD" or length == 0:
        await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
        await send({"type": "http.response.body", "body": b""})
        return
    try:
        chunk = await anext(chunks, b"")
    except PathNotFound:
        raise BlobUnknown("the blob's bytes are gone (collected?)") from None
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
    sent = 0
    while chunk:
        sent += len(chunk)
        if sent >= length:
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        chunk = await anext(chunks, b"")
    if sent != length:
        raise RuntimeError(f"the stored blob is {sent} bytes, not {length}")
    # The last bytes end the response at once; then ``chunks`` runs to its end (a cache's fetch
    # commits there) while the client, its response complete, goes on with its next request.
    await send({"type": "http.response.body", "body": chunk})
    if await anext(chunks, b""):
        raise RuntimeError(f"the stored blob is longer than {length} bytes")
