"""GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>."""

from __future__ import annotations

from starlette.types import Send

from dockyard.oci import mediatypes as mt
from dockyard.registry.errors import ManifestUnknown
from dockyard.registry.events import Actor
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.request import Request
from dockyard.registry.http.responses import send_bytes
from dockyard.registry.pullthrough import Freshness


def _acceptable(accept: str | None, media_type: str) -> bool:
    """Whether the client's Accept allows ``media_type``.

    No conversion is done: a client that asks for a tag listing manifest types but not
    this one (and no wildcard) is told so, as CNCF Distribution does. A digest names fixed
    bytes, so a request by digest always gets them.
    """
    if not accept:
        return True
    offered = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if media_type in offered or "*/*" in offered or "application/*" in offered:
        return True
    return not (offered & mt.MANIFESTS)


async def get_manifest(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    head = req.method == "HEAD"
    freshness = None
    if ctx.pull_through is not None:
        freshness = await ctx.pull_through.manifest(req.params["name"], req.params["reference"])
    stored = await ctx.manifests.get(req.params["name"], req.params["reference"])
    by_tag = ":" not in req.params["reference"]
    if by_tag and not _acceptable(req.header("accept"), stored.media_type):
        raise ManifestUnknown(
            f"the manifest is {stored.media_type}, which the request's Accept header does not allow"
        )
    headers = {
        "Content-Type": stored.media_type,
        "Docker-Content-Digest": stored.digest,
        "ETag": f'"{stored.digest}"',
        "Content-Length": str(stored.size),
    }
    if freshness is not None:
        headers.update(cache_headers(freshness))
    if not head and ctx.pulls is not None:
        ctx.pulls.pulled(req.params["name"], stored.digest)
    await send_bytes(send, 200, b"" if head else stored.content, headers)


def cache_headers(freshness: Freshness) -> dict[str, str]:
    """``Dockyard-Cache: hit|miss|stale``; a stale answer also carries RFC 7234's warning 110
    and the upstream's reason, so that a client (or whoever reads its debug log) sees why."""
    headers = {"Dockyard-Cache": freshness.source}
    if freshness.stale is not None:
        reason = freshness.stale.replace('"', "'").encode("ascii", "replace").decode()[:300]
        headers["Warning"] = f'110 - "Response is Stale: {reason}"'
    return headers


async def put_manifest(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    name, reference = req.params["name"], req.params["reference"]
    data = await req.read(ctx.manifests.max_bytes)
    result = await ctx.manifests.put(name, reference, data, req.header("content-type"), actor=actor)
    headers = {"Location": f"/v2/{name}/manifests/{result.digest}", "Docker-Content-Digest": result.digest}
    if result.subject:
        headers["OCI-Subject"] = result.subject
    await send_bytes(send, 201, headers=headers)


async def delete_manifest(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    await ctx.manifests.delete(req.params["name"], req.params["reference"], actor=actor)
    await send_bytes(send, 202)
