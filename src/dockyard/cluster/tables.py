"""The lease table: one holder at a time for a named periodic task.

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table

from dockyard.db.metadata import metadata

# Named leases, so that one process among many replicas runs a periodic job (GC).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)
