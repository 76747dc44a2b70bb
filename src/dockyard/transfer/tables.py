"""Archive upload sessions (see :mod:`dockyard.transfer.imports`).

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from dockyard.db.metadata import metadata

archive_uploads = Table(
    "archive_uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Column("state", String(12), nullable=False),
    Column("size", BigInteger),  # declared by the client; NULL when not known in advance
    # Archive bytes taken by the import so far: while receiving, the offset to send from.
    Column("processed", BigInteger, nullable=False, server_default="0"),
    # Where an importer can start again (its last checkpoint) when the one holding the
    # session is gone; ``generation`` counts such restarts, so a stale importer knows.
    Column("resume_offset", BigInteger, nullable=False, server_default="0"),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("holder", String(200)),  # host:pid of the process whose import takes the chunks
    Column("layer_compression", String(8), nullable=False, server_default="gzip"),
    Column("reason", Text),  # why it failed
    Column("result", Text),  # JSON, once imported
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_archive_uploads_workspace", "workspace_id"),
    Index("ix_archive_uploads_updated", "updated_at"),
)
