"""Retention's deletes racing pushes, on SQLite and PostgreSQL: each delete checks that the item
is still as planned in the transaction that deletes it, holding the repository row as GC does,
so a tag pushed or an index listing the manifest after the plan is never lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.registry import repositories as repos
from dockyard.registry.events import Actor
from dockyard.registry.manifests import ManifestService
from dockyard.registry.tables import manifests, tags
from dockyard.retention.rules import RuleSpec
from tests.support.oci import OCI_INDEX, Manifest, encode
from tests.unit.catalog.factories import People, image, push
from tests.unit.catalog.test_workspace_races import blocked_on_a_lock
from tests.unit.registry.factories import age, push_manifest
from tests.unit.retention.test_service import run_jobs, tags_of

REPO = "lab/app"
MONTH = 30 * 86400


class PushFirst:
    """The runner's manifest service, with a push landing just before each delete."""

    def __init__(self, real: ManifestService, push: Manifest, reference: str, services: Services) -> None:
        self.real, self.push, self.reference, self.services = real, push, reference, services

    async def delete(self, repository: str, reference: str, *, actor: Actor | None, **options: Any) -> bool:
        await push_manifest(self.services, repository, self.push, self.reference)
        return await self.real.delete(repository, reference, actor=actor, **options)


async def _untagged_old(services: Services) -> Manifest:
    """An image whose tag went, pushed a month ago, beside a tagged one."""
    old = await push(services, REPO, "v1")
    await push(services, REPO, "v2")
    await services.manifests.delete(REPO, "v1", actor=None)
    await age(services.db, MONTH)
    return old


async def _run(services: Services, people: People, spec: RuleSpec) -> tuple[int, int]:
    rule = await services.retention.add(people.maintainer, "lab", spec)
    run = await services.retention_runner.start(people.maintainer, "lab", rule.id, dry_run=False)
    await run_jobs(services)
    done = await services.retention.run(people.reader, "lab", run.id)
    assert done.status == "succeeded", done.error
    return done.total, done.deleted


async def _has_manifest(services: Services, digest: str) -> bool:
    async with services.db.read() as conn:
        found = await conn.execute(select(manifests.c.id).where(manifests.c.digest == digest))
        return found.first() is not None


async def test_an_untagged_manifest_tagged_again_before_its_delete_keeps_the_new_tag(
    services: Services, people: People
) -> None:
    old = await _untagged_old(services)
    runner = services.retention_runner
    runner.manifests = PushFirst(runner.manifests, old, "release", services)  # type: ignore[assignment]
    assert await _run(services, people, RuleSpec("untagged", days=7)) == (1, 0)
    assert await tags_of(services) == ["release", "v2"]
    assert await _has_manifest(services, old.digest)


async def test_an_untagged_manifest_an_index_lists_before_its_delete_stays(
    services: Services, people: People
) -> None:
    old = await _untagged_old(services)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [old.descriptor(platform={"architecture": "amd64", "os": "linux"})],
    }
    index = Manifest(encode(document), OCI_INDEX, children=(old,), document=document)
    runner = services.retention_runner
    runner.manifests = PushFirst(runner.manifests, index, "multi", services)  # type: ignore[assignment]
    assert await _run(services, people, RuleSpec("untagged", days=7)) == (1, 0)
    assert await _has_manifest(services, old.digest)
    assert (await services.manifests.get(REPO, "multi")).digest == index.digest


async def test_a_tag_pushed_to_another_manifest_before_its_delete_stays(
    services: Services, people: People
) -> None:
    await push(services, REPO, "v1")
    await push(services, REPO, "v2")
    await age(services.db, MONTH)
    newer = image("arm64")
    runner = services.retention_runner
    runner.manifests = PushFirst(runner.manifests, newer, "v1", services)  # type: ignore[assignment]
    assert await _run(services, people, RuleSpec("keep_last", count=1)) == (1, 0)
    assert await tags_of(services) == ["v1", "v2"]
    assert (await services.manifests.get(REPO, "v1")).digest == newer.digest


async def test_a_conditional_delete_waits_for_a_push_in_progress_and_sees_its_tag(
    services: Services, people: People
) -> None:
    old = await _untagged_old(services)
    async with services.db.write() as conn:  # a push holding the repository, its tag not committed
        repo_id = await repos.ensure_id(services.db, conn, REPO)
        await conn.execute(
            tags.insert().values(
                repository_id=repo_id, name="release", manifest_digest=old.digest, updated_at=time.time()
            )
        )
        deleting = asyncio.create_task(
            services.manifests.delete(REPO, old.digest, actor=None, only_if_unheld=True)
        )
        await blocked_on_a_lock(services)
    assert await deleting is False
    assert await tags_of(services) == ["release", "v2"]
    assert await _has_manifest(services, old.digest)
