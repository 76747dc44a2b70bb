"""Retention's services on SQLite and PostgreSQL: who may manage and run rules, a real run as a
job (immutable tags kept, the hook told), the schedule on an injected clock, and pull times
written in one batch keeping the latest of several processes."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from dockyard.app.services import Services
from dockyard.auth.tables import workspaces
from dockyard.catalog.immutability import TagRules
from dockyard.errors import Conflict, Forbidden
from dockyard.jobs.worker import Worker
from dockyard.registry.pulls import PullRecorder
from dockyard.registry.tables import manifest_pulls
from dockyard.retention.rules import RuleSpec
from dockyard.retention.runner import JOB_KIND
from dockyard.retention.tables import retention_rules, retention_runs
from dockyard.retention.views import RunSummary
from dockyard.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events
from tests.unit.catalog.factories import People, push

REPO = "lab/app"


async def run_jobs(services: Services) -> int:
    worker = Worker(services.jobs, {JOB_KIND: services.retention_runner.handle})
    count = 0
    while await worker.run_once():
        count += 1
    return count


async def tags_of(services: Services, repository: str = REPO) -> list[str]:
    return sorted(await services.manifests.tags(repository, None, None))


async def test_readers_see_rules_and_runs_maintainers_manage_and_run_them(
    services: Services, people: People
) -> None:
    spec = RuleSpec("keep_last", count=1)
    for who in (people.developer, people.reader, people.outsider):
        with pytest.raises(Forbidden):
            await services.retention.add(who, "lab", spec)
    rule = await services.retention.add(people.maintainer, "lab", spec)
    assert [r.id for r in await services.retention.list_rules(people.reader, "lab")] == [rule.id]
    for who in (people.developer, people.reader):
        with pytest.raises(Forbidden):
            await services.retention_runner.start(who, "lab", rule.id, dry_run=True)
        with pytest.raises(Forbidden):
            await services.retention.remove(who, "lab", rule.id)
    run = await services.retention_runner.start(people.admin, "lab", rule.id, dry_run=True)
    assert [r.id for r in await services.retention.runs(people.reader, "lab", 10)] == [run.id]
    with pytest.raises(Forbidden):
        await services.retention.runs(people.outsider, "lab", 10)


async def test_a_real_run_keeps_immutable_tags_and_tells_the_hook(services: Services, people: People) -> None:
    for tag in ("v1", "v2", "v3", "v4"):
        await push(services, REPO, tag)
    await services.immutability.set(people.owner, "lab", TagRules(["v2"]))
    heard: list[RunSummary] = []

    async def hook(summary: RunSummary) -> None:
        heard.append(summary)

    services.retention_runner.hook(hook)
    rule = await services.retention.add(people.maintainer, "lab", RuleSpec("keep_last", count=1))
    queued = await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=False)
    assert queued.status == "queued"
    assert queued.job_id is not None
    with pytest.raises(Conflict):  # one real run at a time per rule
        await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=False)
    assert await run_jobs(services) == 1
    assert await tags_of(services) == ["v2", "v4"]
    done = await services.retention.run(people.reader, "lab", queued.id)
    assert (done.status, done.deleted, done.kept, done.done) == ("succeeded", 2, 1, 2)
    assert {(i["tag"], i["action"]) for i in done.items} == {
        ("v1", "delete"),
        ("v3", "delete"),
        ("v2", "keep"),
    }
    assert [(s.run_id, s.dry_run, s.deleted, s.kept, s.started_by) for s in heard] == [
        (queued.id, False, 2, 1, people.maintainer.name)
    ]


async def test_the_schedule_queues_a_due_rule_once_per_period(services: Services, people: People) -> None:
    now = [1_800_000_000.0]
    services.retention.clock = services.retention_runner.clock = lambda: now[0]
    for tag in ("a", "b", "c"):
        await push(services, REPO, tag)
    rule = await services.retention.add(
        people.maintainer, "lab", RuleSpec("keep_last", count=2, every_hours=6)
    )
    assert rule.next_run_at == now[0] + 6 * 3600
    now[0] += 6 * 3600 - 1
    assert await services.retention_runner.queue_due() == []
    now[0] += 1
    (first,) = await services.retention_runner.queue_due()
    assert await services.retention_runner.queue_due() == []  # not due again yet
    now[0] += 6 * 3600
    assert await services.retention_runner.queue_due() == []  # the first is still queued: skipped
    assert await run_jobs(services) == 1
    run = await services.retention.run(people.reader, "lab", first)
    assert (run.started_by, run.status, run.deleted) == ("schedule", "succeeded", 1)
    assert await tags_of(services) == ["b", "c"]
    now[0] += 6 * 3600
    assert len(await services.retention_runner.queue_due()) == 1


async def test_pulls_are_noted_in_memory_and_written_in_one_batch_keeping_the_latest(
    services: Services, people: People
) -> None:
    manifest = await push(services, REPO, "v1")
    clocks = [[100.0], [100.0]]
    workers = [PullRecorder(services.db, clock=lambda c=c: c[0]) for c in clocks]  # type: ignore[misc]
    for second in range(1000):
        clocks[0][0] = 100.0 + second
        workers[0].pulled(REPO, manifest.digest)
    clocks[1][0] = 500.0
    workers[1].pulled(REPO, manifest.digest)
    workers[1].pulled("lab/gone", manifest.digest)  # a repository deleted meanwhile: ignored

    async def stored() -> list[tuple[str, float]]:
        async with services.db.read() as conn:
            rows = await conn.execute(select(manifest_pulls.c.digest, manifest_pulls.c.last_pulled_at))
            return [(r[0], r[1]) for r in rows]

    assert await stored() == []  # nothing written per pull
    assert workers[0].pending == 1
    assert await workers[0].flush() == 1
    assert await stored() == [(manifest.digest, 1099.0)]
    assert await workers[1].flush() == 1  # an older time from another process does not win
    assert await stored() == [(manifest.digest, 1099.0)]
    assert await workers[0].flush() == 0


async def test_gc_forgets_the_pull_times_of_manifests_that_are_gone(
    services: Services, people: People
) -> None:
    kept, gone = await push(services, REPO, "kept"), await push(services, REPO, "gone")
    recorder = PullRecorder(services.db)
    recorder.pulled(REPO, kept.digest)
    recorder.pulled(REPO, gone.digest)
    assert await recorder.flush() == 2
    await services.manifests.delete(REPO, gone.digest, actor=None)
    await services.gc.run()
    async with services.db.read() as conn:
        left = (await conn.execute(select(manifest_pulls.c.digest))).scalars().all()
    assert left == [kept.digest]


async def test_a_run_whose_job_died_does_not_block_the_rule_for_good(
    services: Services, people: People
) -> None:
    await push(services, REPO, "v1")
    rule = await services.retention.add(people.maintainer, "lab", RuleSpec("keep_last", count=1))
    stuck = await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=False)
    job = await services.jobs.claim([JOB_KIND], "dead-worker", 30)
    assert job is not None
    assert job.id == stuck.job_id
    await services.jobs.finish(job.id, "dead-worker", "failed", "the worker stopped (lost its lease) 2 times")
    again = await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=False)
    assert again.id != stuck.id
    failed = await services.retention.run(people.reader, "lab", stuck.id)
    assert failed.status == "failed"
    assert (
        failed.error
        == "its job ended (failed: the worker stopped (lost its lease) 2 times) before the run finished"
    )


async def test_a_daily_rule_is_queued_at_its_hour_each_day(services: Services, people: People) -> None:
    midnight = 1_800_057_600.0  # 2027-01-15 00:00 UTC
    now = [midnight + 10 * 3600]  # 10:00: today's 03:00 has passed
    services.retention.clock = services.retention_runner.clock = lambda: now[0]
    rule = await services.retention.add(people.maintainer, "lab", RuleSpec("untagged", days=7, daily_at=3))
    assert rule.schedule == "daily at 03:00 UTC"
    assert rule.next_run_at == midnight + 86400 + 3 * 3600
    now[0] = midnight + 86400 + 3 * 3600 + 5  # the check runs a little after the hour
    assert len(await services.retention_runner.queue_due()) == 1
    (again,) = await services.retention.list_rules(people.reader, "lab")
    assert again.next_run_at == midnight + 2 * 86400 + 3 * 3600


async def test_a_workspace_goes_with_its_rules_and_runs(services: Services, people: People) -> None:
    await push(services, REPO, "v1")
    rule = await services.retention.add(people.maintainer, "lab", RuleSpec("keep_last", count=1))
    await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=True)
    await services.identity.workspaces.delete(people.owner, "lab", force=True)
    async with services.db.read() as conn:
        for table in (retention_rules, retention_runs):
            assert (await conn.execute(select(table.c.id))).all() == []


async def test_every_run_puts_its_webhook_event_in_the_outbox_as_it_ends(
    services: Services, people: People
) -> None:
    for tag in ("v1", "v2", "v3"):
        await push(services, REPO, tag)
    async with services.db.write() as conn:
        lab = (await conn.execute(select(workspaces.c.id).where(workspaces.c.name == "lab"))).scalar_one()
        await conn.execute(
            webhook_endpoints.insert().values(
                workspace_id=lab,
                url="https://hooks.example.org/in",
                events=json.dumps(["retention.run"]),
                enabled=True,
                secret="unused here",
                created_at=time.time(),
            )
        )
    rule = await services.retention.add(people.maintainer, "lab", RuleSpec("keep_last", count=1))
    dry = await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=True)
    real = await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=False)
    async with services.db.read() as conn:  # queued, not ended: no event yet for the real run
        before = (await conn.execute(select(webhook_events.c.subject))).scalars().all()
    assert before == [f"retention/runs/{dry.id}"]
    assert await run_jobs(services) == 1
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(webhook_events.c.type, webhook_events.c.subject, webhook_events.c.data).order_by(
                    webhook_events.c.id
                )
            )
        ).all()
        deliveries = (await conn.execute(select(func.count()).select_from(webhook_deliveries))).scalar_one()
    assert [(r.type, r.subject) for r in rows] == [
        ("org.dockyard.retention.run", f"retention/runs/{dry.id}"),
        ("org.dockyard.retention.run", f"retention/runs/{real.id}"),
    ]
    first, second = (json.loads(r.data) for r in rows)
    assert (first["dry_run"], first["status"], first["deleted"]) == (True, "succeeded", 2)  # would go
    assert (second["dry_run"], second["status"], second["deleted"]) == (False, "succeeded", 2)
    assert second["started_by"] == people.maintainer.name
    assert deliveries == 2  # one for the endpoint, per event
