"""Tables of access requests and the notifications they send.

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from dockyard.db.metadata import metadata

# Requests name the repository rather than point at it, so that asking for access to a
# repository one cannot see answers the same whether or not it exists.
access_requests = Table(
    "access_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("requester_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(8), nullable=False),  # 'pull' or 'push'
    Column("message", Text, nullable=False, server_default=""),
    Column("status", String(10), nullable=False),  # pending, approved, rejected, cancelled
    Column("decided_by", Integer),
    Column("decided_at", Float),
    Column("decision_note", Text),
    Column("grant_expires_at", Float),
    Column("created_at", Float, nullable=False),
    Index("ix_access_requests_workspace", "workspace_id", "status"),
    Index("ix_access_requests_requester", "requester_id"),
)


notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("created_at", Float, nullable=False),
    Column("read_at", Float),
    Index("ix_notifications_user", "user_id", "id"),
)
