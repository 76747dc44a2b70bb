"""Access requests, their decisions, and notifications."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp, Services
from dockyard.api.v1.inputs import GrantDays, IdPath, IdQuery, Name, Text
from dockyard.tenancy.repositories import Grant
from dockyard.tenancy.requests import AccessRequest, Notification

router = APIRouter(tags=["access requests"])


class RequestCreate(BaseModel):
    repository: Text = Field(description="The repository, like 'genomics/samtools'.")
    action: Name = Field("pull", description="'pull' or 'push'.")
    message: Text = Field("", max_length=2000, description="Why you need access; maintainers read it.")


class Approval(BaseModel):
    action: Name | None = Field(None, description="'pull' or 'push'; defaults to what was asked.")
    expires_in_days: GrantDays = Field(30.0, description="How long the grant lasts.")
    note: Text = ""


class Rejection(BaseModel):
    note: Text = ""


@dataclass(frozen=True)
class Approved:
    request: AccessRequest
    grant: Grant


@router.post("/access-requests", status_code=201, summary="Ask for access to a repository")
async def create_request(
    body: RequestCreate, services: Services, actor: Caller, ip: ClientIp
) -> AccessRequest:
    return await services.requests.create(actor, body.repository, body.action, body.message, ip)


@router.get(
    "/access-requests",
    summary="Your requests, or a workspace's (maintainers)",
    description="Newest first; page back with before= the id of the oldest request you have.",
)
async def list_requests(
    services: Services,
    actor: Caller,
    workspace: Name | None = None,
    status: Name | None = None,
    mine: bool = False,
    before: IdQuery = None,
    limit: int = Query(100, ge=1, le=500),
) -> list[AccessRequest]:
    return await services.requests.find(
        actor, workspace=workspace, status=status, mine=mine, before=before, limit=limit
    )


@router.get(
    "/access-requests/{request_id}", summary="One request (its requester or the workspace's maintainers)"
)
async def get_request(request_id: IdPath, services: Services, actor: Caller) -> AccessRequest:
    return await services.requests.get(actor, request_id)


@router.post(
    "/access-requests/{request_id}/approve", summary="Approve: grant access until an expiry (maintainers)"
)
async def approve(
    request_id: IdPath, body: Approval, services: Services, actor: Caller, ip: ClientIp
) -> Approved:
    request, grant = await services.requests.approve(
        actor,
        request_id,
        action=body.action,
        expires_in_days=body.expires_in_days,
        note=body.note,
        client_ip=ip,
    )
    return Approved(request, grant)


@router.post("/access-requests/{request_id}/reject", summary="Reject (maintainers)")
async def reject(
    request_id: IdPath, body: Rejection, services: Services, actor: Caller, ip: ClientIp
) -> AccessRequest:
    return await services.requests.reject(actor, request_id, body.note, ip)


@router.post("/access-requests/{request_id}/cancel", summary="Withdraw your own pending request")
async def cancel(request_id: IdPath, services: Services, actor: Caller, ip: ClientIp) -> AccessRequest:
    return await services.requests.cancel(actor, request_id, ip)


@router.get(
    "/notifications",
    tags=["notifications"],
    summary="Your notifications, newest first",
    description="Page back with before= the id of the oldest notification you have.",
)
async def notifications(
    services: Services,
    actor: Caller,
    unread: bool = False,
    before: IdQuery = None,
    limit: int = Query(200, ge=1, le=500),
) -> list[Notification]:
    return await services.requests.notifications(actor, unread, before=before, limit=limit)


@router.post("/notifications/read", tags=["notifications"], summary="Mark all your notifications read")
async def read_all(services: Services, actor: Caller) -> dict[str, int]:
    return {"marked": await services.requests.mark_read(actor, None)}


@router.post("/notifications/{notification_id}/read", tags=["notifications"], summary="Mark one read")
async def read_one(notification_id: IdPath, services: Services, actor: Caller) -> dict[str, int]:
    return {"marked": await services.requests.mark_read(actor, notification_id)}
