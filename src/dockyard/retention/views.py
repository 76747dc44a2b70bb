"""What retention answers: rules, runs, and the summary handed to the run hook."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dockyard.retention.rules import RuleSpec


@dataclass(frozen=True)
class RuleView:
    id: int
    workspace: str
    kind: str
    repository: str | None
    tag_pattern: str
    count: int | None
    ordering: str | None
    days: int | None
    every_hours: int
    daily_at: int | None
    schedule: str  # "every 6 h", "daily at 03:00 UTC", "when started"
    next_run_at: float | None
    enabled: bool
    description: str
    created_at: float
    created_by: str

    @property
    def spec(self) -> RuleSpec:
        return RuleSpec.of(self)


def rule_view(row: Any, workspace: str) -> RuleView:
    spec = RuleSpec.of(row)
    return RuleView(
        row.id,
        workspace,
        row.kind,
        row.repository,
        row.tag_pattern,
        row.count,
        row.ordering,
        row.days,
        row.every_hours,
        row.daily_at,
        spec.schedule(),
        row.next_run_at,
        bool(row.enabled),
        spec.describe(),
        row.created_at,
        row.created_by,
    )


@dataclass(frozen=True)
class RunView:
    id: int
    workspace: str
    rule_id: int | None
    rule: str
    dry_run: bool
    status: str
    started_by: str
    job_id: int | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    total: int  # what the run found to delete
    done: int  # of which handled so far (progress of a real run)
    deleted: int  # deleted (a dry run: would delete)
    kept: int  # kept on purpose: immutable, not a semantic version
    items: list[dict[str, Any]]
    error: str | None


def run_view(row: Any, workspace: str, with_items: bool = True) -> RunView:
    return RunView(
        row.id,
        workspace,
        row.rule_id,
        row.rule,
        bool(row.dry_run),
        row.status,
        row.started_by,
        row.job_id,
        row.queued_at,
        row.started_at,
        row.finished_at,
        row.total,
        row.done,
        row.deleted,
        row.kept,
        json.loads(row.items) if with_items else [],
        row.error,
    )


@dataclass(frozen=True)
class RunSummary:
    """What the run hook hears at the end of every run (dry or real, succeeded or failed)."""

    run_id: int
    workspace: str
    rule_id: int | None
    rule: str
    dry_run: bool
    status: str
    started_by: str
    deleted: int
    kept: int
    finished_at: float


RunHook = Callable[[RunSummary], Awaitable[None]]


async def no_hook(_summary: RunSummary) -> None:
    """The default hook: nothing listens."""
