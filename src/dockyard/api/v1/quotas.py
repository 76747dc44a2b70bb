"""A workspace's quota: the bytes it stores (each blob once) and its limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, BeforeValidator, Field

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import MAX_BYTES, Name
from dockyard.registry.quota_admin import Quotas, QuotaView
from dockyard.settings import parse_size

router = APIRouter(tags=["workspaces"])


def quotas(request: Request) -> Quotas:
    found: Quotas = request.app.state.quotas
    return found


Service = Annotated[Quotas, Depends(quotas)]

# Bytes as a JSON integer or a size string ("500MiB", "1.5GiB", "2TB"), 0 to 2^53-1 (exact in
# every JSON reader); NaN, infinities, fractions of a byte and negatives are refused (422).
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0, le=MAX_BYTES)]


class QuotaBody(BaseModel):
    limit_bytes: Size | None = Field(
        description="The workspace's limit, in bytes or as a size such as '500GiB'; null: the "
        "platform default applies again (none: unlimited). A limit below the current usage is "
        "allowed: pushes of new blobs are then refused until enough is deleted."
    )


@router.get("/workspaces/{name}/quota", summary="Stored bytes and quota (members)")
async def get_quota(name: Name, service: Service, actor: Caller) -> QuotaView:
    return await service.show(actor, name)


@router.put("/workspaces/{name}/quota", summary="Set or clear the quota (platform admins)")
async def set_quota(name: Name, body: QuotaBody, service: Service, actor: Caller, ip: ClientIp) -> QuotaView:
    return await service.set(actor, name, body.limit_bytes, ip)
