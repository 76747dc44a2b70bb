"""Running retention rules: dry runs (answered at once), real runs (durable jobs, one at a
time per rule) and the schedule that queues due rules.

A real run plans again when its job starts (what a dry run listed earlier may have changed)
and deletes through the registry's own delete (:meth:`ManifestService.delete`), so the catalog
removes the versions and records them in the image's history, the audit log records each
``tag.delete`` or ``manifest.delete``, and the caches are invalidated, exactly as for a delete
over /v2; the garbage collector then reclaims the bytes nothing references any more. Each
delete is conditional, checked in its own transaction while it holds the repository row
exclusively as GC does (pushes share-lock it): a tag goes only while it still points at the
manifest planned (a tag pushed again meanwhile is left alone), an untagged manifest only while
nothing holds it yet (no tag, no index listing it, no subject of its own pushed again).

Each run is recorded in ``retention_runs`` and audited (``retention.run``); the transaction that
ends a run also puts the webhooks' ``retention.run`` event in their outbox, and the hook given
(``on_run``: the app wakes the webhook delivery with it) hears the run's summary once it committed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update

from dockyard.auth import audit
from dockyard.auth.base import Principal
from dockyard.auth.policy import Subject
from dockyard.auth.tables import workspaces
from dockyard.catalog.immutability import load_rules
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict
from dockyard.jobs.queue import FINISHED, Job, JobQueue
from dockyard.jobs.worker import JobCancelled, JobContext
from dockyard.registry.errors import NameUnknown
from dockyard.registry.events import Actor
from dockyard.registry.manifests import ManifestService
from dockyard.retention import facts
from dockyard.retention.rules import Plan, RuleSpec, select_tags, select_untagged
from dockyard.retention.service import MANAGER, RetentionRules
from dockyard.retention.tables import retention_rules, retention_runs
from dockyard.retention.views import RunHook, RunSummary, RunView, no_hook, rule_view, run_view
from dockyard.webhooks import outbox

log = logging.getLogger("dockyard.retention")

JOB_KIND = "retention.run"
MAX_ITEMS = 10_000  # items kept in a run's record (the counts are exact)
SCHEDULE = "schedule"  # started_by of a scheduled run
ACTIVE = ("queued", "running")
ORPHAN_SECONDS = 300.0  # a real run with no job after this long lost its process before queueing


async def plan_for(conn: Connection, workspace_id: int, spec: RuleSpec, now: float) -> Plan:
    if spec.kind == "untagged":
        return select_untagged(spec, await facts.untagged_facts(conn, workspace_id, spec), now)
    immutable = await load_rules(conn, workspace_id)
    return select_tags(spec, await facts.tag_facts(conn, workspace_id, spec), now, immutable.rule_for)


class RetentionRunner:
    def __init__(
        self,
        db: Database,
        rules: RetentionRules,
        manifests: ManifestService,
        jobs: JobQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.rules = rules
        self.manifests = manifests
        self.jobs = jobs
        self.clock = clock
        self.on_run: RunHook = no_hook

    def hook(self, on_run: RunHook) -> None:
        """Call ``on_run`` with every run's summary when it ends (wired by the composition root)."""
        self.on_run = on_run

    async def start(
        self, actor: Subject, workspace: str, rule_id: int, dry_run: bool, client_ip: str | None = None
    ) -> RunView:
        """A dry run, done now (the run with what would go), or a real run queued as a job."""
        now = self.clock()
        plan: Plan | None = None
        if dry_run:  # planned in a read transaction: a large workspace holds no write lock meanwhile
            async with self.db.read() as conn:
                ws = await self.rules.workspace(conn, actor, workspace, MANAGER)
                rule = rule_view(await self.rules.rule_row(conn, ws, rule_id), workspace)
                plan = await plan_for(conn, ws.id, rule.spec, now)
        async with self.db.write() as conn:
            ws = await self.rules.workspace(conn, actor, workspace, MANAGER)
            rule = rule_view(await self.rules.rule_row(conn, ws, rule_id), workspace)
            if not dry_run:
                await self._refuse_second(conn, rule_id)
            run_id = await self._insert_run(conn, ws.id, rule_id, rule.description, dry_run, actor.name, now)
            await audit.record(
                conn,
                actor,
                "retention.run",
                workspace_id=ws.id,
                target=f"{workspace} rule {rule_id}",
                client_ip=client_ip,
                detail={"run": run_id, "dry_run": dry_run, "rule": rule.description},
            )
            if plan is not None:
                await self._finish(conn, run_id, plan, len(plan.doomed), "succeeded", None)
        if dry_run:
            return await self._ended(run_id, workspace)
        await self._enqueue(run_id, rule_id)
        return await self.rules.run(actor, workspace, run_id)

    async def _refuse_second(self, conn: Connection, rule_id: int) -> None:
        """Refuse while a real run of the rule is queued or running. A run whose job ended
        without finishing it (its attempts used up) or that never got a job (its process died
        between the two) is marked failed instead, so it never blocks the rule for good."""
        active = (
            await conn.execute(
                select(retention_runs.c.id, retention_runs.c.job_id, retention_runs.c.queued_at).where(
                    retention_runs.c.rule_id == rule_id,
                    retention_runs.c.dry_run.is_(False),
                    retention_runs.c.status.in_(ACTIVE),
                )
            )
        ).all()
        for run_id, job_id, queued_at in active:
            job = None if job_id is None else await self.jobs.get(job_id)
            if job_id is None and self.clock() - queued_at < ORPHAN_SECONDS:
                raise Conflict(f"run {run_id} of rule {rule_id} is being queued; wait for it to end")
            if job is not None and job.status not in FINISHED:
                raise Conflict(
                    f"run {run_id} of rule {rule_id} is still queued or running; wait for it to end"
                )
            await conn.execute(
                update(retention_runs)
                .where(retention_runs.c.id == run_id)
                .values(status="failed", finished_at=self.clock(), error=_lost(job))
            )

    async def _insert_run(
        self, conn: Connection, workspace_id: int, rule_id: int, rule: str, dry_run: bool, by: str, now: float
    ) -> int:
        inserted = await conn.execute(
            retention_runs.insert()
            .values(
                workspace_id=workspace_id,
                rule_id=rule_id,
                rule=rule,
                dry_run=dry_run,
                status="running" if dry_run else "queued",
                started_by=by,
                queued_at=now,
                started_at=now if dry_run else None,
            )
            .returning(retention_runs.c.id)
        )
        return int(inserted.scalar_one())

    async def _enqueue(self, run_id: int, rule_id: int) -> None:
        job_id = await self.jobs.enqueue(JOB_KIND, {"run_id": run_id}, dedupe_key=f"retention:{rule_id}")
        async with self.db.write() as conn:
            await conn.execute(
                update(retention_runs).where(retention_runs.c.id == run_id).values(job_id=job_id)
            )

    async def _finish(
        self, conn: Connection, run_id: int, plan: Plan, deleted: int, status: str, error: str | None
    ) -> None:
        items = [i.as_dict() for i in plan.items[:MAX_ITEMS]]
        await conn.execute(
            update(retention_runs)
            .where(retention_runs.c.id == run_id)
            .values(
                status=status,
                finished_at=self.clock(),
                total=len(plan.doomed),
                deleted=deleted,
                kept=len(plan.kept),
                items=json.dumps(items),
                error=error,
            )
        )
        await self._record_event(conn, run_id)

    async def _record_event(self, conn: Connection, run_id: int) -> None:
        """The webhooks' ``retention.run`` event, in the transaction that ends the run (so a run
        that ended is never without its event, whatever happens to the process next)."""
        row = (
            await conn.execute(
                select(
                    retention_runs.c.workspace_id,
                    retention_runs.c.rule_id,
                    retention_runs.c.rule,
                    retention_runs.c.dry_run,
                    retention_runs.c.status,
                    retention_runs.c.started_by,
                    retention_runs.c.total,
                    retention_runs.c.deleted,
                    retention_runs.c.kept,
                    retention_runs.c.error,
                ).where(retention_runs.c.id == run_id)
            )
        ).one()
        data = {
            "run": run_id,
            "rule_id": row.rule_id,
            "rule": row.rule,
            "dry_run": bool(row.dry_run),
            "status": row.status,
            "started_by": row.started_by,
            "total": row.total,
            "deleted": row.deleted,
            "kept": row.kept,
            "error": row.error,
        }
        await outbox.record(conn, row.workspace_id, "retention.run", f"retention/runs/{run_id}", data)

    async def _ended(self, run_id: int, workspace: str) -> RunView:
        async with self.db.read() as conn:
            row = (await conn.execute(select(retention_runs).where(retention_runs.c.id == run_id))).one()
        view = run_view(row, workspace)
        summary = RunSummary(
            view.id,
            workspace,
            view.rule_id,
            view.rule,
            view.dry_run,
            view.status,
            view.started_by,
            view.deleted,
            view.kept,
            view.finished_at or self.clock(),
        )
        try:
            await self.on_run(summary)
        except Exception:
            log.exception("the retention run hook failed for run %s", run_id)
        return view

    async def handle(self, ctx: JobContext) -> None:
        """The job handler of a real run."""
        await self.execute(int(ctx.job.payload["run_id"]), ctx.heartbeat)

    async def execute(
        self, run_id: int, heartbeat: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    ) -> RunView:
        """Plan and delete; the run's record shows progress (``done`` of ``total``)."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(retention_runs).where(retention_runs.c.id == run_id))).one()
            ws_name = await _workspace_name(conn, row.workspace_id)
            rule_row = (
                await conn.execute(select(retention_rules).where(retention_rules.c.id == row.rule_id))
            ).first()
            plan = Plan()
            if rule_row is not None:
                plan = await plan_for(conn, row.workspace_id, rule_view(rule_row, ws_name).spec, self.clock())
        async with self.db.write() as conn:
            if rule_row is None:
                await self._finish(conn, run_id, plan, 0, "failed", "the rule was removed before the run")
            else:
                await conn.execute(
                    update(retention_runs)
                    .where(retention_runs.c.id == run_id)
                    .values(status="running", started_at=self.clock(), total=len(plan.doomed), done=0)
                )
        if rule_row is None:
            return await self._ended(run_id, ws_name)
        actor = None if row.started_by == SCHEDULE else Actor(Principal(row.started_by, kind="user"))
        deleted, error, stopped = 0, None, None
        try:
            for number, item in enumerate(plan.doomed, 1):
                deleted += await self._delete(item.repository, item.tag, item.digest, actor)
                if number % 10 == 0 or number == len(plan.doomed):
                    await self._progress(run_id, number, deleted, heartbeat)
        except JobCancelled as exc:  # the worker decides what happens to the job: raised again below
            error, stopped = f"stopped ({exc.reason}) after deleting {deleted}", exc
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            log.exception("retention run %s failed", run_id)
        async with self.db.write() as conn:
            await self._finish(conn, run_id, plan, deleted, "failed" if error else "succeeded", error)
        view = await self._ended(run_id, ws_name)
        if stopped is not None:
            raise stopped
        if error:
            raise RuntimeError(f"retention run {run_id} failed: {error}")
        return view

    async def _progress(
        self,
        run_id: int,
        done: int,
        deleted: int,
        heartbeat: Callable[[dict[str, Any]], Awaitable[None]] | None,
    ) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(retention_runs).where(retention_runs.c.id == run_id).values(done=done, deleted=deleted)
            )
        if heartbeat is not None:
            await heartbeat({"done": done, "deleted": deleted})

    async def _delete(self, repository: str, tag: str | None, digest: str, actor: Actor | None) -> int:
        """Delete one planned item if it is still as planned; 1 if it was deleted. The check and
        the delete are one transaction holding the repository (a push waits for it)."""
        try:
            if tag is not None:
                done = await self.manifests.delete(repository, tag, actor=actor, expect_digest=digest)
            else:
                done = await self.manifests.delete(repository, digest, actor=actor, only_if_unheld=True)
        except NameUnknown:
            return 0  # the repository was deleted meanwhile
        return 1 if done else 0

    async def queue_due(self) -> list[int]:
        """Queue a run of every enabled rule whose time came (skipping a rule whose previous
        run is still active); the runs queued. Called under the ``retention`` lease."""
        now = self.clock()
        queued: list[tuple[int, int]] = []
        async with self.db.write() as conn:
            due = (
                await conn.execute(
                    select(retention_rules).where(
                        retention_rules.c.enabled.is_(True),
                        retention_rules.c.next_run_at.is_not(None),
                        retention_rules.c.next_run_at <= now,
                    )
                )
            ).all()
            for rule in due:
                ws_name = await _workspace_name(conn, rule.workspace_id)
                view = rule_view(rule, ws_name)
                await conn.execute(
                    update(retention_rules)
                    .where(retention_rules.c.id == rule.id)
                    .values(next_run_at=view.spec.next_run(now))
                )
                try:
                    await self._refuse_second(conn, rule.id)
                except Conflict:
                    continue
                description = view.description
                run_id = await self._insert_run(
                    conn, rule.workspace_id, rule.id, description, False, SCHEDULE, now
                )
                await audit.record(
                    conn,
                    None,
                    "retention.run",
                    workspace_id=rule.workspace_id,
                    target=f"{ws_name} rule {rule.id}",
                    detail={"run": run_id, "dry_run": False, "rule": description, "scheduled": True},
                )
                queued.append((run_id, rule.id))
        for run_id, rule_id in queued:
            await self._enqueue(run_id, rule_id)
        return [run_id for run_id, _ in queued]


async def _workspace_name(conn: Connection, workspace_id: int) -> str:
    found = await conn.execute(select(workspaces.c.name).where(workspaces.c.id == workspace_id))
    return str(found.scalar_one())


def _lost(job: Job | None) -> str:
    if job is None:
        return "the run was never queued (its process stopped)"
    return f"its job ended ({job.status}{': ' + job.error if job.error else ''}) before the run finished"
