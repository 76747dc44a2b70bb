"""Tables of the trust marks (migration 0031). Timestamps are float seconds since the epoch."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from dockyard.db.metadata import metadata

# A workspace an admin designated: official or verified (publisher); no row: a user's.
workspace_marks = Table(
    "workspace_marks",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("mark", String(10), nullable=False),  # official, verified
    Column("set_at", Float, nullable=False),
    Column("set_by", String(140), nullable=False, server_default=""),
)


# Public keys a workspace trusts for its images' signatures (PEM SubjectPublicKeyInfo:
# ECDSA P-256, Ed25519 or RSA); ``key_id`` is sha256 of the DER encoding.
trusted_keys = Table(
    "trusted_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(80), nullable=False),
    Column("name", String(64), nullable=False),
    Column("algorithm", String(12), nullable=False),  # ecdsa-p256, ed25519, rsa
    Column("pem", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    UniqueConstraint("workspace_id", "key_id", name="uq_trusted_keys_workspace_key"),
)


# The verification of a version's signatures, kept when a signature is pushed or the
# workspace's keys change (the ``signed`` filter reads it in SQL): verified (by ``key_id``),
# invalid (a signature for another digest, or malformed), unverified (well-formed signatures
# no trusted key verifies). No row: no signature.
signature_checks = Table(
    "signature_checks",
    metadata,
    Column("version_id", Integer, ForeignKey("image_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(150), nullable=False),
    Column("state", String(12), nullable=False),
    Column("key_id", String(80)),
    Column("signature_digest", String(150)),
    Column("detail", Text, nullable=False, server_default=""),
    Column("checked_at", Float, nullable=False),
    Index("ix_signature_checks_state", "state"),
)
