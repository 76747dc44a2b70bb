"""Blob uploads: POST (start, monolithic, mount), PATCH, PUT, GET status, DELETE."""

from __future__ import annotations

from starlette.types import Send

from dockyard.auth.base import Access
from dockyard.auth.errors import AuthenticationFailed, InsufficientScope, Throttled
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidName
from dockyard.oci.names import validate_hosted_name
from dockyard.oci.ranges import parse_content_range
from dockyard.registry.errors import SizeMismatch
from dockyard.registry.events import Actor
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.errors import ErrorCode, RegistryError
from dockyard.registry.http.request import Request
from dockyard.registry.http.responses import send_bytes
from dockyard.registry.uploads import session_headers


def _created(name: str, digest: str) -> dict[str, str]:
    return {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}


def _digest_param(req: Request) -> Digest:
    raw = req.query.get("digest")
    if not raw:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID, "the digest query parameter is required to finish an upload"
        )
    return Digest.parse(raw)


async def _may_pull(ctx: RegistryContext, req: Request, source: str) -> bool:
    try:
        validate_hosted_name(source)
        await ctx.authorizer.authorize(req.caller(), [Access.repository(source, "pull")])
    except (InvalidName, AuthenticationFailed, InsufficientScope, Throttled):
        return False
    return True


async def start_upload(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    name = req.params["name"]
    mount, source = req.query.get("mount"), req.query.get("from")
    if mount and source:
        digest = Digest.parse(mount)
        if await _may_pull(ctx, req, source) and await ctx.blobs.mount(name, source, digest) is not None:
            await send_bytes(send, 201, headers=_created(name, digest))
            return
        # Not reachable: fall back to a plain upload session, as the spec says.
    elif "digest" in req.query:
        digest = await ctx.uploads.monolithic(name, _digest_param(req), req.body(), req.content_length())
        await send_bytes(send, 201, headers=_created(name, digest))
        return
    status = await ctx.uploads.start(name)
    await send_bytes(send, 202, headers=session_headers(name, status.id, status.offset))


def _content_range(req: Request) -> int | None:
    raw = req.header("content-range")
    if raw is None:
        return None
    found = parse_content_range(raw)
    if found is None:
        raise RegistryError(
            ErrorCode.RANGE_INVALID, f"malformed Content-Range {raw[:60]!r}; expected START-END"
        )
    length = req.content_length()
    if length is not None and length != found.length:
        raise SizeMismatch(f"Content-Range covers {found.length} bytes but Content-Length is {length}")
    return found.start


async def patch_upload(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    name, upload_id = req.params["name"], req.params["upload"]
    start = _content_range(req)
    status = await ctx.uploads.append(name, upload_id, req.body(), start, req.content_length())
    await send_bytes(send, 202, headers=session_headers(name, upload_id, status.offset))


async def finish_upload(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    name, upload_id = req.params["name"], req.params["upload"]
    digest = _digest_param(req)
    await ctx.uploads.finish(name, upload_id, digest, req.body(), req.content_length())
    await send_bytes(send, 201, headers=_created(name, digest))


async def upload_status(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    name, upload_id = req.params["name"], req.params["upload"]
    status = await ctx.uploads.status(name, upload_id)
    await send_bytes(send, 204, headers=session_headers(name, upload_id, status.offset))


async def cancel_upload(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    await ctx.uploads.cancel(req.params["name"], req.params["upload"])
    await send_bytes(send, 204)
