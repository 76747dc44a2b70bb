"""Tables of the registry's metadata. Timestamps are float seconds since the epoch (UTC).

Manifest bytes live in ``manifests.content`` exactly as received; blob bytes live in
storage, keyed by digest (see :mod:`dockyard.registry.paths`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(150)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    # The workspace is the name's first path component; NULL only for rows made before 0002.
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE")),
    Column("visibility", String(10), nullable=False, server_default="private"),
    Index("ix_repositories_workspace", "workspace_id"),
)

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

# Named leases, so that one process among many replicas runs a periodic job (GC).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)


# --- Identity and access (issue 3) -------------------------------------------------------
# Roles, from least to most: reader (pull), developer (pull, push), maintainer (also delete
# and manage access), owner (also members, settings, deleting the workspace). A NULL
# ``repository_id`` in a permission row means "the whole workspace".

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", String(255)),
    Column("full_name", String(255)),
    Column("password_hash", String(255)),  # argon2id; NULL: no password login
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("disabled_at", Float),
    Column("created_at", Float, nullable=False),
    Column("last_login_at", Float),
)

# Every user has a personal workspace named after them, so names are unique across both.
workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),  # 'org' or 'personal'
    Column("personal_user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("default_visibility", String(10), nullable=False, server_default="private"),
    Column("created_at", Float, nullable=False),
    Column("created_by", Integer),
)

memberships = Table(
    "memberships",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(12), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_memberships_user", "user_id"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_teams_workspace_name"),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_team_members_user", "user_id"),
)

robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", Integer),
    Column("disabled_at", Float),
    UniqueConstraint("workspace_id", "name", name="uq_robots_workspace_name"),
)

# Roles held by a team or a robot, on the whole workspace (repository_id NULL) or one repository.
permissions = Table(
    "permissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE")),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE")),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE")),
    Column("role", String(12), nullable=False),
    Column("created_at", Float, nullable=False),
    CheckConstraint("(team_id IS NULL) <> (robot_id IS NULL)", name="ck_permissions_one_holder"),
    Index("ix_permissions_team", "team_id"),
    Index("ix_permissions_robot", "robot_id"),
    Index("ix_permissions_repository", "repository_id"),
)

# Personal access tokens and robot tokens. Only a SHA-256 of the secret is kept (secrets
# are 32 random bytes, so a slow hash adds nothing); ``scopes`` caps what the token may do.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE")),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(64), nullable=False),
    Column("expires_at", Float),
    Column("last_used_at", Float),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    CheckConstraint("(user_id IS NULL) <> (robot_id IS NULL)", name="ck_access_tokens_one_owner"),
    Index("ix_access_tokens_user", "user_id"),
    Index("ix_access_tokens_robot", "robot_id"),
)

# Docker's "identity tokens" (OAuth2 refresh tokens), issued on login with offline_token.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE")),
    Column("access_token_id", Integer, ForeignKey("access_tokens.id", ondelete="CASCADE")),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("client_id", String(100), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
)

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

# Direct rights of one user on one repository: from an approved request (with an expiry)
# or given by a maintainer (repository-level permission, expiry optional).
repository_grants = Table(
    "repository_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(8), nullable=False),  # 'pull' or 'push'
    Column("expires_at", Float),
    Column("granted_by", Integer),
    Column("request_id", Integer, ForeignKey("access_requests.id", ondelete="SET NULL")),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Index("ix_repository_grants_user", "user_id", "repository_id"),
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

# Append-only: the code only ever inserts. Rows outlive the workspaces they name.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor_kind", String(10), nullable=False),  # user, robot, anonymous, system
    Column("actor_id", Integer),
    Column("actor_name", String(140), nullable=False),
    Column("action", String(40), nullable=False),
    Column("workspace_id", Integer),
    Column("target", String(300), nullable=False, server_default=""),
    Column("client_ip", String(64)),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON object
    Index("ix_audit_log_workspace", "workspace_id", "id"),
    Index("ix_audit_log_at", "at"),
)

# Failed-login counters, per user and address and per address alone.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("locked_until", Float),
)


# --- Catalog (issue 4) -------------------------------------------------------------------
# An image is named like a repository (``workspace/name``), so names are unique platform-wide;
# internal versions live in the registry repository of the same name, external versions
# point at another registry.

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(140), nullable=False, server_default=""),
    Column("built_at", Float),
    Column("built_by", String(140)),
    Index("ix_images_workspace", "workspace_id"),
)

image_versions = Table(
    "image_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(128), nullable=False),
    Column("source", String(10), nullable=False),  # internal, external
    Column("kind", String(10), nullable=False, server_default="tool"),  # tool, bench
    Column("cluster_compatibility", Text, nullable=False, server_default="[]"),  # JSON list, bench only
    Column("access", String(10), nullable=False, server_default="workspace"),  # public, workspace, private
    Column("regions", Text, nullable=False, server_default="[]"),  # JSON list
    # internal: pending, available, failed; external: unverified, reachable, unreachable
    Column("status", String(12), nullable=False),
    Column("status_reason", Text),
    Column("external_reference", String(600)),  # canonical reference, external versions
    Column("digest", String(150)),
    Column("media_type", String(255)),
    Column("compressed_size", BigInteger),
    Column("uncompressed_size", BigInteger),
    Column("platforms", Text, nullable=False, server_default="[]"),  # JSON list of os/arch[/variant]
    Column("warnings", Text, nullable=False, server_default="[]"),  # JSON list of {code, message}
    Column("checked_at", Float),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("image_id", "version", name="uq_image_versions_image_version"),
)

image_events = Table(
    "image_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(128)),
    Column("at", Float, nullable=False),
    Column("actor", String(140), nullable=False, server_default=""),
    Column("kind", String(40), nullable=False),  # created, modified, pushed, built, verified, ...
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON object
    Index("ix_image_events_image", "image_id", "id"),
)

# Uncompressed sizes of layer blobs, measured once per blob (layers are shared).
blob_uncompressed = Table(
    "blob_uncompressed",
    metadata,
    Column("digest", DIGEST, ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("size", BigInteger, nullable=False),
)

# Workspace policies for the catalog (one row per workspace that set one).
catalog_policies = Table(
    "catalog_policies",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("require_amd64", Boolean, nullable=False, server_default=false()),
)

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


# --- Archive uploads (issue 5) -----------------------------------------------------------
# A docker-save / OCI archive uploaded in chunks: the bytes so far are the file
# ``archives/<id>/archive`` in storage (its size is the offset), so a session survives a
# dropped connection and a server restart. ``state``: receiving, importing, done, failed.
# ``result`` (JSON) holds what the import found: per image, the manifests to push and the
# blobs they need (staged under ``archives/<id>/blobs/`` or already stored).

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


# --- Jobs (issue 6) ----------------------------------------------------------------------
# The durable job queue (:mod:`dockyard.jobs`). ``status``: queued, running, succeeded,
# failed, cancelled. A running job is leased: ``lease_holder`` must renew
# ``lease_expires_at`` (heartbeat) or recovery hands the job to another worker (attempt + 1)
# or fails it once ``max_attempts`` runs were lost. ``attempt`` counts runs, from 1.
# ``payload`` and ``progress`` are JSON objects. ``dedupe_key``: at most one queued or
# running job per key (a partial unique index; finished jobs keep their key).

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


# --- Builds (issue 6) --------------------------------------------------------------------
# A build definition is a buildable image of a workspace; its ``name`` (``workspace/name``)
# is the registry repository it pushes to, unique across Dockyard like catalog names.
# ``context``: local (``dockerfile`` edited here + an uploaded tar of files, stored as
# ``builds/contexts/<id>/<sha256>.tar``; ``context_digest`` names it) or git (``git_url``,
# ``git_ref``, ``git_directory``, with ``dockerfile_path`` inside that folder).
# ``content_hash`` covers what decides the image (Dockerfile, files, git source, args,
# target, platform); a run keeps the hash it built, so the status (built / not built /
# modified) compares the definition with its last successful run.

build_definitions = Table(
    "build_definitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("context", String(8), nullable=False),  # local, git
    Column("dockerfile", Text),  # local context
    Column("context_digest", String(80)),  # sha256 of the uploaded files tar, local context
    Column("context_size", BigInteger),
    Column("git_url", String(1000)),
    Column("git_ref", String(255)),
    Column("git_directory", String(500), nullable=False, server_default=""),
    Column("dockerfile_path", String(500), nullable=False, server_default="Dockerfile"),
    Column("build_args", Text, nullable=False, server_default="{}"),  # JSON object
    Column("target", String(128)),
    Column("platform", String(64), nullable=False, server_default="linux/amd64"),
    Column("version", String(128), nullable=False, server_default="latest"),  # default tag pushed
    Column("external_destination", String(600)),  # another registry's repository, optional
    Column("network", String(16), nullable=False, server_default="none"),  # RUN steps': none, egress
    Column("content_hash", String(80), nullable=False),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(140), nullable=False, server_default=""),
    Index("ix_build_definitions_workspace", "workspace_id"),
)

# One row per build. ``spec`` (JSON) is the definition as it was when the build started,
# so later edits do not change a queued build. ``status``: queued, running, succeeded,
# failed, cancelled. The log is ``builds/logs/<id>.log`` in storage (``log_bytes`` long).
build_runs = Table(
    "build_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("definition_id", Integer, ForeignKey("build_definitions.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Integer),
    Column("status", String(12), nullable=False),
    Column("version", String(128), nullable=False),
    Column("content_hash", String(80), nullable=False),
    Column("spec", Text, nullable=False),  # JSON object
    Column("started_by", String(140), nullable=False),
    Column("started_by_id", Integer),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("cancel_requested_at", Float),
    Column("cancelled_by", String(140)),
    Column("reason", Text),
    Column("digest", String(150)),
    Column("pushed", Text, nullable=False, server_default="[]"),  # JSON list of {reference, digest}
    Column("git_commit", String(64)),
    Column("dockerfile", Text),  # as built
    Column("builder", String(100)),
    Column("log_bytes", BigInteger, nullable=False, server_default="0"),
    Index("ix_build_runs_definition", "definition_id", "id"),
    Index("ix_build_runs_status", "status"),
)

# The history of a definition: created, modified, build.started, built, build.failed,
# build.cancelled — who and when, with details (changed fields, run id, digest).
build_events = Table(
    "build_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("definition_id", Integer, ForeignKey("build_definitions.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(140), nullable=False, server_default=""),
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON object
    Index("ix_build_events_definition", "definition_id", "id"),
)
