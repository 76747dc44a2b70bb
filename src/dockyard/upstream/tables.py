"""Credentials for other registries, encrypted (see :mod:`dockyard.upstream.credentials`).

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from dockyard.db.metadata import metadata

# Credentials a workspace keeps for other registries (verifying its private external images).
# The secret is encrypted (Fernet) with a key kept beside the token-signing keys.
upstream_credentials = Table(
    "upstream_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("registry", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    UniqueConstraint("workspace_id", "registry", name="uq_upstream_credentials_workspace_registry"),
)
