"""What the webhook service returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Webhook:
    id: int
    workspace: str
    url: str
    description: str
    events: list[str]  # empty: every event
    enabled: bool
    created_at: float
    created_by: str
    secret_rotated_at: float | None  # when the signing secret was last rotated
    previous_secret_until: float | None  # the old secret signs too until then (after a rotation)


@dataclass(frozen=True)
class NewWebhook(Webhook):
    secret: str  # shown once, at creation or rotation: receivers verify signatures with it


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str  # the CloudEvents id (webhook-id header)
    type: str
    subject: str
    state: str  # pending, delivered, failed
    attempts: int
    status_code: int | None  # of the last attempt
    error: str | None
    duration_ms: int | None
    created_at: float
    last_attempt_at: float | None
    next_attempt_at: float | None  # when pending
    finished_at: float | None
