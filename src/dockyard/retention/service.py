"""Retention rules of a workspace: adding, listing, changing and removing them, and reading
the history of their runs. Readers of the workspace see rules and runs; maintainers (and
owners, and admins) manage and run them, as in Harbor, where tag retention is a project
maintainer's setting. Every change is audited (``retention.rule.add``, ``.update``,
``.remove``); runs are in :mod:`.runner`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select, update

from dockyard.auth import audit
from dockyard.auth.guard import Workspace, find_workspace
from dockyard.auth.policy import Subject
from dockyard.catalog.access import Access
from dockyard.db.engine import Connection, Database
from dockyard.errors import Invalid, NotFound
from dockyard.retention.rules import RuleSpec, check_spec
from dockyard.retention.tables import retention_rules, retention_runs
from dockyard.retention.views import RuleView, RunView, rule_view, run_view

MANAGER = "maintainer"  # the least workspace role that manages and runs retention rules
MAX_RULES = 50  # per workspace


def first_run_at(spec: RuleSpec, now: float) -> float | None:
    return spec.next_run(now)


class RetentionRules:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def workspace(self, conn: Connection, actor: Subject, workspace: str, needed: str) -> Workspace:
        ws = await find_workspace(conn, workspace)
        await Access(conn, actor).require(ws.id, workspace, needed)
        return ws

    async def rule_row(self, conn: Connection, ws: Workspace, rule_id: int) -> Any:
        row = (
            await conn.execute(
                select(retention_rules).where(
                    retention_rules.c.id == rule_id, retention_rules.c.workspace_id == ws.id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"workspace {ws.name!r} has no retention rule {rule_id}")
        return row

    async def add(
        self, actor: Subject, workspace: str, spec: RuleSpec, client_ip: str | None = None
    ) -> RuleView:
        spec = check_spec(spec, workspace)
        now = self.clock()
        async with self.db.write() as conn:
            ws = await self.workspace(conn, actor, workspace, MANAGER)
            held = await conn.execute(
                select(func.count())
                .select_from(retention_rules)
                .where(retention_rules.c.workspace_id == ws.id)
            )
            if held.scalar_one() >= MAX_RULES:
                raise Invalid(f"a workspace has at most {MAX_RULES} retention rules")
            rule_id = (
                await conn.execute(
                    retention_rules.insert()
                    .values(
                        workspace_id=ws.id,
                        **spec.columns(),
                        next_run_at=first_run_at(spec, now),
                        enabled=True,
                        created_at=now,
                        created_by=actor.name,
                    )
                    .returning(retention_rules.c.id)
                )
            ).scalar_one()
            row = await self.rule_row(conn, ws, rule_id)
            view = rule_view(row, workspace)
            await audit.record(
                conn,
                actor,
                "retention.rule.add",
                workspace_id=ws.id,
                target=f"{workspace} rule {rule_id}",
                client_ip=client_ip,
                detail={"rule": view.description},
            )
        return view

    async def update(
        self,
        actor: Subject,
        workspace: str,
        rule_id: int,
        spec: RuleSpec,
        enabled: bool,
        client_ip: str | None = None,
    ) -> RuleView:
        spec = check_spec(spec, workspace)
        async with self.db.write() as conn:
            ws = await self.workspace(conn, actor, workspace, MANAGER)
            before = rule_view(await self.rule_row(conn, ws, rule_id), workspace)
            await conn.execute(
                update(retention_rules)
                .where(retention_rules.c.id == rule_id)
                .values(
                    **spec.columns(),
                    next_run_at=first_run_at(spec, self.clock()),
                    enabled=enabled,
                )
            )
            after = rule_view(await self.rule_row(conn, ws, rule_id), workspace)
            await audit.record(
                conn,
                actor,
                "retention.rule.update",
                workspace_id=ws.id,
                target=f"{workspace} rule {rule_id}",
                client_ip=client_ip,
                detail={
                    "before": {"rule": before.description, "enabled": before.enabled},
                    "after": {"rule": after.description, "enabled": after.enabled},
                },
            )
        return after

    async def remove(
        self, actor: Subject, workspace: str, rule_id: int, client_ip: str | None = None
    ) -> None:
        async with self.db.write() as conn:
            ws = await self.workspace(conn, actor, workspace, MANAGER)
            view = rule_view(await self.rule_row(conn, ws, rule_id), workspace)
            await conn.execute(delete(retention_rules).where(retention_rules.c.id == rule_id))
            await audit.record(
                conn,
                actor,
                "retention.rule.remove",
                workspace_id=ws.id,
                target=f"{workspace} rule {rule_id}",
                client_ip=client_ip,
                detail={"rule": view.description},
            )

    async def list_rules(self, actor: Subject, workspace: str) -> list[RuleView]:
        """The workspace's rules (at most :data:`MAX_RULES`), oldest first."""
        async with self.db.read() as conn:
            ws = await self.workspace(conn, actor, workspace, "reader")
            rows = await conn.execute(
                select(retention_rules)
                .where(retention_rules.c.workspace_id == ws.id)
                .order_by(retention_rules.c.id)
                .limit(MAX_RULES)
            )
            return [rule_view(row, workspace) for row in rows]

    async def get(self, actor: Subject, workspace: str, rule_id: int) -> RuleView:
        async with self.db.read() as conn:
            ws = await self.workspace(conn, actor, workspace, "reader")
            return rule_view(await self.rule_row(conn, ws, rule_id), workspace)

    async def runs(
        self,
        actor: Subject,
        workspace: str,
        limit: int,
        before: int | None = None,
        rule_id: int | None = None,
    ) -> list[RunView]:
        """The workspace's runs, newest first, ``limit`` with an id below ``before`` (without
        their item lists: ask for one run to see them)."""
        async with self.db.read() as conn:
            ws = await self.workspace(conn, actor, workspace, "reader")
            stmt = select(retention_runs).where(retention_runs.c.workspace_id == ws.id)
            if before is not None:
                stmt = stmt.where(retention_runs.c.id < before)
            if rule_id is not None:
                stmt = stmt.where(retention_runs.c.rule_id == rule_id)
            rows = await conn.execute(stmt.order_by(retention_runs.c.id.desc()).limit(limit))
            return [run_view(row, workspace, with_items=False) for row in rows]

    async def run(self, actor: Subject, workspace: str, run_id: int) -> RunView:
        async with self.db.read() as conn:
            ws = await self.workspace(conn, actor, workspace, "reader")
            row = (
                await conn.execute(
                    select(retention_runs).where(
                        retention_runs.c.id == run_id, retention_runs.c.workspace_id == ws.id
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"workspace {workspace!r} has no retention run {run_id}")
            return run_view(row, workspace)
