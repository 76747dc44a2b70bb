"""Build definitions, runs and their events.

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
    false,
)

from dockyard.db.metadata import metadata

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
    # JSON list of {profile, repository, tag}: other registries, through registry profiles
    Column("push_targets", Text, nullable=False, server_default="[]"),
    Column("network", String(16), nullable=False, server_default="none"),  # RUN steps': none, egress
    # queue a build when a newer version of the image built FROM appears (catalog.lineage)
    Column("rebuild_on_base_update", Boolean, nullable=False, server_default=false()),
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
    # JSON list of each push target's outcome: {reference, profile, ok, digest, reason, detail, message}
    Column("push_results", Text, nullable=False, server_default="[]"),
    Column("git_commit", String(64)),
    Column("dockerfile", Text),  # as built
    Column("builder", String(100)),
    Column("log_bytes", BigInteger, nullable=False, server_default="0"),
    Index("ix_build_runs_definition", "definition_id", "id"),
    Index("ix_build_runs_status", "status"),
    Index("ix_build_runs_digest", "digest"),  # which run built a version (rebuilds)
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
