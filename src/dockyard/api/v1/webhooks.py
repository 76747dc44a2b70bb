"""A workspace's webhooks (maintainers): endpoints, their delivery log, and a test."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import IdPath, IdQuery, Name, Text, Url
from dockyard.webhooks.cloudevents import EVENT_NAMES
from dockyard.webhooks.service import DEFAULT_GRACE_HOURS, MAX_GRACE_HOURS, Webhooks
from dockyard.webhooks.views import Delivery, NewWebhook, Webhook

router = APIRouter(tags=["webhooks"])


def webhook_service(request: Request) -> Webhooks:
    found: Webhooks = request.app.state.webhooks
    return found


Service = Annotated[Webhooks, Depends(webhook_service)]
ReceiverUrl = Annotated[Url, Field(description="The http:// or https:// URL the events are POSTed to.")]
Events = Annotated[
    list[Name],
    Field(max_length=len(EVENT_NAMES), description=f"Among {', '.join(EVENT_NAMES)}; empty: every event."),
]


class WebhookCreate(BaseModel):
    url: ReceiverUrl
    events: Events = []
    description: Text = ""
    enabled: bool = True


class WebhookUpdate(BaseModel):
    url: ReceiverUrl | None = None
    events: Events | None = None
    description: Text | None = None
    enabled: bool | None = None


class SecretRotation(BaseModel):
    grace_hours: int = Field(
        DEFAULT_GRACE_HOURS,
        ge=0,
        le=MAX_GRACE_HOURS,
        description="How long the old secret keeps signing beside the new one (0: it stops now).",
    )


@router.get("/workspaces/{workspace}/webhooks", summary="A workspace's webhooks (maintainers)")
async def list_webhooks(workspace: Name, service: Service, actor: Caller) -> list[Webhook]:
    return await service.all(actor, workspace)


@router.post(
    "/workspaces/{workspace}/webhooks",
    status_code=201,
    summary="Add a webhook (maintainers)",
    description="The answer carries the signing secret, shown this once. A URL on a loopback or private "
    "address is refused unless an administrator allowed it (DOCKYARD_OUTBOUND_ALLOW).",
)
async def create_webhook(
    workspace: Name, body: WebhookCreate, service: Service, actor: Caller, ip: ClientIp
) -> NewWebhook:
    return await service.create(actor, workspace, body.url, body.events, body.description, body.enabled, ip)


@router.get("/workspaces/{workspace}/webhooks/{webhook_id}", summary="A webhook (maintainers)")
async def get_webhook(workspace: Name, webhook_id: IdPath, service: Service, actor: Caller) -> Webhook:
    return await service.get(actor, workspace, webhook_id)


@router.patch("/workspaces/{workspace}/webhooks/{webhook_id}", summary="Change a webhook (maintainers)")
async def update_webhook(
    workspace: Name, webhook_id: IdPath, body: WebhookUpdate, service: Service, actor: Caller, ip: ClientIp
) -> Webhook:
    return await service.update(
        actor,
        workspace,
        webhook_id,
        url=body.url,
        events=body.events,
        description=body.description,
        enabled=body.enabled,
        client_ip=ip,
    )


@router.delete(
    "/workspaces/{workspace}/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook (maintainers)"
)
async def delete_webhook(
    workspace: Name, webhook_id: IdPath, service: Service, actor: Caller, ip: ClientIp
) -> None:
    await service.delete(actor, workspace, webhook_id, ip)


@router.post(
    "/workspaces/{workspace}/webhooks/{webhook_id}/rotate-secret",
    summary="Give a webhook a new signing secret (maintainers)",
    description="The answer carries the new secret, shown this once. Until grace_hours have passed, "
    "each event carries two signatures (new and old secret) in its webhook-signature header.",
)
async def rotate_webhook_secret(
    workspace: Name,
    webhook_id: IdPath,
    service: Service,
    actor: Caller,
    ip: ClientIp,
    body: SecretRotation | None = None,
) -> NewWebhook:
    grace = (body or SecretRotation()).grace_hours
    return await service.rotate_secret(actor, workspace, webhook_id, grace, ip)


@router.get(
    "/workspaces/{workspace}/webhooks/{webhook_id}/deliveries",
    summary="A webhook's delivery log, newest first (maintainers)",
    description="Page backwards with before= the id of the last delivery you have.",
)
async def list_deliveries(
    workspace: Name,
    webhook_id: IdPath,
    service: Service,
    actor: Caller,
    before: IdQuery = None,
    state: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[Delivery]:
    return await service.deliveries(actor, workspace, webhook_id, before=before, state=state, limit=limit)


@router.post(
    "/workspaces/{workspace}/webhooks/{webhook_id}/test",
    summary="Send a test event now (maintainers)",
    description="Sends a webhook.ping once, whatever the webhook's filter, and answers its delivery: "
    "state delivered or failed, with the receiver's status code or the error.",
)
async def test_webhook(workspace: Name, webhook_id: IdPath, service: Service, actor: Caller) -> Delivery:
    return await service.test(actor, workspace, webhook_id)
