"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>."""

from __future__ import annotations

import contextlib

from starlette.types import Send

from dockyard.oci.digest import Digest
from dockyard.oci.ranges import parse_range as parse_range_header
from dockyard.registry.errors import BlobUnknown
from dockyard.registry.events import Actor
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.errors import ErrorCode, RegistryError
from dockyard.registry.http.request import Request
from dockyard.registry.http.responses import send_bytes, send_file, send_stream
from dockyard.registry.pullthrough import Streamed


def parse_range(header: str, size: int) -> tuple[int, int]:
    """(offset, length) of a single byte range; RANGE_INVALID when unsatisfiable or malformed."""
    spec = parse_range_header(header)
    part = None if spec is None else spec.within(size)
    if part is None:
        raise RegistryError(
            ErrorCode.RANGE_INVALID,
            f"range {header[:60]!r} cannot be served from {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    start, end = part
    return start, end - start


async def get_blob(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    digest = Digest.parse(req.params["digest"])
    try:
        location = await ctx.blobs.locate(req.params["name"], digest, req.method)
    except BlobUnknown:
        if ctx.pull_through is None:
            raise
        if req.method == "HEAD":  # answered from the upstream's HEAD: nothing is downloaded
            size = await ctx.pull_through.blob_size(req.params["name"], digest)
            if size is not None:
                await send_bytes(send, 200, headers=_streamed_headers(digest, size))
                return
        else:
            streamed = await ctx.pull_through.blob(req.params["name"], digest)
            if streamed is not None:
                async with contextlib.aclosing(streamed.chunks):
                    if streamed.size > 0:
                        await _send_streamed(req, send, digest, streamed)
                        return
                    async for _ in streamed.chunks:  # an empty blob: stored, then served as stored
                        pass
        location = await ctx.blobs.locate(req.params["name"], digest, req.method)
    if location.redirect is not None:
        await send_bytes(
            send,
            307,
            headers={
                "Location": location.redirect,
                "Docker-Content-Digest": digest,
                "Dockyard-Region": location.region,
            },
        )
        return
    headers = {
        "Dockyard-Region": location.region,
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    offset, length, status = 0, location.size, 200
    range_header = req.header("range")
    if range_header and location.size > 0:
        offset, length = parse_range(range_header, location.size)
        status = 206
        headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{location.size}"
    headers["Content-Length"] = str(length)
    if location.local is None:  # an object store without a redirect: stream through us
        storage = location.storage or ctx.blobs.storage
        chunks = storage.reader(location.path, offset, length)
        await send_stream(send, req.scope, status, chunks, length, headers)
        return
    await send_file(send, req.scope, status, location.local, offset, length, headers)


async def _send_streamed(req: Request, send: Send, digest: Digest, streamed: Streamed) -> None:
    """A blob arriving from a cache's upstream: the whole of it (a Range is ignored, as the spec
    allows: the bytes are being stored from the start), sent as it is stored."""
    headers = _streamed_headers(digest, streamed.size)
    await send_stream(send, req.scope, 200, streamed.chunks, streamed.size, headers)


def _streamed_headers(digest: Digest, size: int) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest,
        "Content-Length": str(size),
        "Dockyard-Cache": "miss",
    }


async def delete_blob(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    digest = Digest.parse(req.params["digest"])
    await ctx.blobs.unlink(req.params["name"], digest)
    await send_bytes(send, 202, headers={"Docker-Content-Digest": digest})
