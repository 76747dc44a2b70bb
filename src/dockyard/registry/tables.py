"""Tables of the OCI registry: blobs (bytes in storage, keyed by digest; see
:mod:`dockyard.registry.paths`), their links into repositories, manifests (``content`` holds
the bytes exactly as received), tags, upload sessions and the claims that keep GC away.

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dockyard.db.metadata import DIGEST, metadata

# Content-addressed blobs, shared by every repository. ``state`` is 'live' or 'deleting'
# (set by GC before it removes the bytes, so that a concurrent upload waits instead of
# racing with the delete); ``touched_at`` is refreshed by every upload and mount.
blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("state", String(10), nullable=False, server_default="live"),
    Column("created_at", Float, nullable=False),
    Column("touched_at", Float, nullable=False),
)


# A blob claimed by an upload or an import that is moving its bytes into place and has not
# linked it yet: GC leaves a claimed blob alone, whatever its grace period, until the link
# replaces the claim (same transaction) or the claim lapses (its holder died).
blob_claims = Table(
    "blob_claims",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("digest", DIGEST, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_blob_claims_digest", "digest"),
)


# A repository may serve a blob only through a link (uploads and mounts create them).
repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("touched_at", Float, nullable=False),
    Index("ix_repository_blobs_digest", "digest"),
)


manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", DIGEST),
    Column("annotations", Text),  # JSON object, for referrers listings
    Column("created_at", Float, nullable=False),
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
)


# What a manifest references: kind 'blob' (config and layers) or 'manifest' (index children).
manifest_references = Table(
    "manifest_references",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(10), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Index("ix_manifest_references_digest", "digest"),
)


tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("manifest_digest", DIGEST, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_tags_manifest", "repository_id", "manifest_digest"),
)


uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


# When a manifest was last pulled (a GET by tag or digest), for retention's "not pulled for D
# days". Written in batches by :mod:`dockyard.registry.pulls` (no write per pull), keeping the
# latest time any process saw. Keyed by digest, not manifest id, so a batch needs no lookup.
manifest_pulls = Table(
    "manifest_pulls",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("last_pulled_at", Float, nullable=False),
)


# Quotas (see :mod:`dockyard.registry.quotas`): per workspace, its limit and the bytes it uses,
# each blob counted once per workspace (one ``workspace_blobs`` row while any of its
# repositories links it); ``used_bytes`` is the sum of those rows' sizes, kept in the same
# transaction as every link and unlink. The quota row is also the lock that serialises a
# workspace's accounting on PostgreSQL.
# ``limit_bytes``: the workspace's own limit; NULL (or no row): the platform default
# (``DOCKYARD_DEFAULT_WORKSPACE_QUOTA``, none when unset).
workspace_quotas = Table(
    "workspace_quotas",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("limit_bytes", BigInteger),
    Column("used_bytes", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(140), nullable=False, server_default=""),
)

workspace_blobs = Table(
    "workspace_blobs",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
)

# Regions (see :mod:`dockyard.registry.regions`): which named storage location holds which blob.
# A blob with no row is held by the default region alone (every blob stored before regions, and
# every push); once a blob has rows, they are the whole truth about where its bytes are.
region_blobs = Table(
    "region_blobs",
    metadata,
    Column("region", String(32), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Index("ix_region_blobs_digest", "digest"),
)

# The registry's events waiting for their durable handlers (the catalog, the audit log): a row
# is written in the transaction of the push or delete it tells of, and deleted in the
# transaction that applies it (:mod:`dockyard.registry.outbox`), so an answered change is
# never lost and never applied twice. ``event`` is its JSON; one repository's rows are applied
# in ``id`` order.
registry_outbox = Table(
    "registry_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository", String(255), nullable=False),
    Column("event", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_registry_outbox_repository", "repository", "id"),
)
