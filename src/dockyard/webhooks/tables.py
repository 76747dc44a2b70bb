"""Webhook endpoints, the outbox of events and the deliveries (one per endpoint and event)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text, true

from dockyard.db.metadata import metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("events", Text, nullable=False, server_default="[]"),  # JSON list of types; [] = all
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("secret", Text, nullable=False),  # Fernet-encrypted signing secret
    # After a rotation the old secret signs too (a second signature) until previous_until.
    Column("previous_secret", Text),  # Fernet-encrypted
    Column("previous_until", Float),
    Column("secret_rotated_at", Float),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Index("ix_webhook_endpoints_workspace", "workspace_id", "id"),
)

# The outbox: written in the transaction of the change it tells of.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(40), nullable=False, unique=True),  # the CloudEvents id
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(100), nullable=False),
    Column("subject", Text, nullable=False),
    Column("data", Text, nullable=False),  # JSON
    Column("created_at", Float, nullable=False),
    Index("ix_webhook_events_created", "created_at"),  # the purge
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False),
    Column("ordering_key", String(300), nullable=False),  # the repository; deliveries wait in order
    Column("state", String(10), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),  # a delivery process holds it until then
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("last_duration_ms", Integer),
    Column("last_attempt_at", Float),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    # The delivery loop: due pending rows, and the earlier pending row of the same key.
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "state", "id"),
    # The delivery log of an endpoint, newest first.
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    Index("ix_webhook_deliveries_event", "event_id"),
    Index("ix_webhook_deliveries_finished", "finished_at"),  # the purge of the log
)
