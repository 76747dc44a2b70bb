"""Concurrent first pushes of an immutable tag (#18): the catalog's admission runs before the
push's transaction, so every racing push can be admitted while the tag does not exist yet; the
registry then writes the tag only where it is new or unchanged, so exactly one push wins, the
others are refused with the rule, and the tag names the winner. The race is forced: each push
waits after its admission until all of them were admitted (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.tables import repositories
from dockyard.catalog.admission import PushPolicy
from dockyard.catalog.content import RegistryContent
from dockyard.catalog.immutability import TagRules
from dockyard.registry.admission import ProposedPush
from dockyard.registry.errors import PushRefused
from dockyard.registry.tables import manifests, tags
from tests.unit.catalog.factories import WORKSPACE, People, image
from tests.unit.registry.factories import push_blob

RACERS = 6


async def test_racing_first_pushes_of_an_immutable_tag_leave_exactly_one_winner(
    services: Services, people: People
) -> None:
    await services.immutability.set(people.owner, WORKSPACE, TagRules(["v*"], []))
    policy = PushPolicy(services.db, RegistryContent(services.manifests, services.blobs))
    admitted: list[str] = []
    everyone_admitted = asyncio.Event()

    async def admit_then_wait(push: ProposedPush) -> str | None:
        refusal = await policy(push)
        assert refusal is None  # the tag does not exist yet: each push alone is admitted
        admitted.append(push.digest)
        if len(admitted) == RACERS:
            everyone_admitted.set()
        await asyncio.wait_for(everyone_admitted.wait(), timeout=30)
        return refusal

    services.manifests.admit_with(admit_then_wait, policy.keep_immutable)
    racers = [image() for _ in range(RACERS)]
    for manifest in racers:
        for blob in manifest.blobs:
            await push_blob(services, "lab/tool", blob)

    results = await asyncio.gather(
        *(services.manifests.put("lab/tool", "v1", m.body, m.media_type, actor=None) for m in racers),
        return_exceptions=True,
    )

    won = [m.digest for m, r in zip(racers, results, strict=True) if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, PushRefused) for r in refused), refused
    assert {str(r) for r in refused} == {
        "lab/tool:v1 is immutable (the workspace 'lab' keeps tags matching 'v*' where they were "
        "first pushed): push another tag, or ask an owner to change the rule"
    }
    async with services.db.read() as conn:
        pointed = (
            await conn.execute(
                select(tags.c.manifest_digest)
                .join(repositories, repositories.c.id == tags.c.repository_id)
                .where(repositories.c.name == "lab/tool", tags.c.name == "v1")
            )
        ).scalar_one()
        stored = {
            row[0]
            for row in await conn.execute(
                select(manifests.c.digest)
                .join(repositories, repositories.c.id == manifests.c.repository_id)
                .where(repositories.c.name == "lab/tool")
            )
        }
    assert pointed == won[0]
    assert stored == {won[0]}  # a refused push stores nothing
    # The same manifest again is no move, and is admitted.
    winner = next(m for m in racers if m.digest == won[0])
    await services.manifests.put("lab/tool", "v1", winner.body, winner.media_type, actor=None)
