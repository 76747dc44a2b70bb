"""Credentials for other registries, encrypted (see :mod:`dockyard.upstream.credentials`).

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

from dockyard.db.metadata import metadata

# Registry profiles: how to reach another registry (kind, plain HTTP or TLS, a CA bundle) and
# the credentials for it, per workspace, or platform-wide (workspace_id NULL, admins only).
# The secret is encrypted (Fernet) with a key kept beside the token-signing keys; for ECR the
# username/secret are the AWS access key pair, exchanged for a registry token.
upstream_credentials = Table(
    "upstream_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True),
    Column("registry", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    # dockerhub, quay, gitlab, ghcr, ecr, ngc, distribution
    Column("kind", String(20), nullable=False, server_default="distribution"),
    Column("plain_http", Boolean),  # NULL: plain HTTP for loopback and settings.upstream_insecure
    Column("tls_verify", Boolean, nullable=False, server_default=true()),
    Column("ca_bundle", Text),  # PEM, at most MAX_CA_BUNDLE bytes (upstream.profiles)
    Column("ecr_account", String(12)),
    Column("ecr_region", String(40)),
    UniqueConstraint("workspace_id", "registry", name="uq_upstream_credentials_workspace_registry"),
    Index("ix_upstream_credentials_registry", "registry", "workspace_id"),
    # NULLs are distinct in the constraint above: one platform-wide profile per host needs this
    Index(
        "uq_upstream_credentials_platform_registry",
        "registry",
        unique=True,
        sqlite_where=text("workspace_id IS NULL"),
        postgresql_where=text("workspace_id IS NULL"),
    ),
)

# A workspace that is a pull-through cache: repositories below it are named
# ``<workspace>/<upstream host>/<path>`` and filled from that upstream on first pull.
cache_workspaces = Table(
    "cache_workspaces",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("limit_bytes", BigInteger, nullable=False),
    Column("revalidate_seconds", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# When each cached tag was last confirmed with its upstream (digests are never revalidated).
cache_tag_checks = Table(
    "cache_tag_checks",
    metadata,
    Column("repository", String(255), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("checked_at", Float, nullable=False),
)
