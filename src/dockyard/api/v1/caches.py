"""A workspace as a pull-through cache: its size limit, tag revalidation time and usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, BeforeValidator, Field

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import Name
from dockyard.api.v1.quotas import Size
from dockyard.upstream.cache_admin import MAX_REVALIDATE_SECONDS, CacheAdmin, CacheView, parse_duration

router = APIRouter(tags=["workspaces"])


def caches(request: Request) -> CacheAdmin:
    found: CacheAdmin = request.app.state.caches
    return found


Service = Annotated[CacheAdmin, Depends(caches)]
Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0, le=MAX_REVALIDATE_SECONDS)]


class CacheBody(BaseModel):
    limit_bytes: Size = Field(description="The cache's size limit, in bytes or as a size such as '50GiB'.")
    revalidate_seconds: Duration = Field(
        600, description="A cached tag is asked again upstream once this old (seconds, or '10m', '2h', '1d')."
    )


@router.get("/workspaces/{name}/cache", summary="The workspace's cache settings and usage (members)")
async def get_cache(name: Name, service: Service, actor: Caller) -> CacheView:
    return await service.show(actor, name)


@router.put("/workspaces/{name}/cache", summary="Make the workspace a pull-through cache (platform admins)")
async def set_cache(name: Name, body: CacheBody, service: Service, actor: Caller, ip: ClientIp) -> CacheView:
    return await service.set(actor, name, body.limit_bytes, body.revalidate_seconds, ip)


@router.delete(
    "/workspaces/{name}/cache", status_code=204, summary="Stop caching (platform admins; content stays)"
)
async def clear_cache(name: Name, service: Service, actor: Caller, ip: ClientIp) -> Response:
    await service.clear(actor, name, ip)
    return Response(status_code=204)
