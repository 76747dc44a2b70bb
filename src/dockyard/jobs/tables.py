"""The durable job queue.

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text, false, text

from dockyard.db.metadata import metadata

JOB_ACTIVE = "status IN ('queued', 'running')"


jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False, server_default="{}"),
    Column("status", String(12), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("max_attempts", Integer, nullable=False),
    Column("dedupe_key", String(255)),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("lease_holder", String(140)),
    Column("lease_expires_at", Float),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("error", Text),
    Column("progress", Text, nullable=False, server_default="{}"),
    Index("ix_jobs_status", "status", "id"),
    Index(
        "uq_jobs_active_dedupe_key",
        "dedupe_key",
        unique=True,
        sqlite_where=text(JOB_ACTIVE),
        postgresql_where=text(JOB_ACTIVE),
    ),
)
