"""Tables of retention: the rules of a workspace and the record of every run (dry or real).

Timestamps are float seconds since the epoch (UTC)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text, true

from dockyard.db.metadata import metadata

# One rule: its scope (the workspace, or one repository of it), the tags it looks at (a glob,
# as immutable tags have them; empty: every tag) and what it does (``kind``):
# 'keep_last' (keep the latest ``count`` tags per repository, ordered by ``ordering``: 'pushed'
# or 'semver'), 'untagged' (delete untagged manifests older than ``days``), 'not_pulled'
# (delete tags not pulled for ``days``). ``every_hours`` or ``daily_at`` (an hour, UTC)
# schedules it (neither: only when started); ``next_run_at`` is when the scheduler queues it next.
retention_rules = Table(
    "retention_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255)),
    Column("tag_pattern", String(128), nullable=False, server_default=""),
    Column("kind", String(20), nullable=False),
    Column("count", Integer),
    Column("ordering", String(10)),
    Column("days", Integer),
    Column("every_hours", Integer, nullable=False, server_default="0"),
    Column("daily_at", Integer),
    Column("next_run_at", Float),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False),
    Index("ix_retention_rules_workspace", "workspace_id", "id"),
    Index("ix_retention_rules_due", "next_run_at"),
)

# One run of a rule. ``status``: 'queued', 'running', 'succeeded', 'failed'. ``items`` is the
# JSON list of what went (or would go, for a dry run) and what was kept on purpose (immutable
# tags, tags that are not semantic versions), capped; the counts are exact. ``rule`` keeps the
# rule's description, so the history stays readable after the rule is removed.
retention_runs = Table(
    "retention_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", Integer, ForeignKey("retention_rules.id", ondelete="SET NULL")),
    Column("rule", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("started_by", String(140), nullable=False),
    Column("job_id", Integer),
    Column("queued_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("deleted", Integer, nullable=False, server_default="0"),
    Column("kept", Integer, nullable=False, server_default="0"),
    Column("items", Text, nullable=False, server_default="[]"),
    Column("error", Text),
    Index("ix_retention_runs_workspace", "workspace_id", "id"),
    Index("ix_retention_runs_rule", "rule_id", "id"),
)
