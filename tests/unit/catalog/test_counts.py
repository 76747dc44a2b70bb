"""A list's ``total`` is exact up to :data:`dockyard.catalog.queries.COUNT_CAP` rows and says
"that many or more" beyond (``total_exact`` false), on SQLite and PostgreSQL: what the web UI
shows as "1-50 of 1,000+" and the CLI as "1-50 of 1000+ images"; pages past the cap still
list their rows."""

from __future__ import annotations

import time

from sqlalchemy import insert, select

from dockyard.app.services import Services
from dockyard.auth.tables import repositories, workspaces
from dockyard.catalog.queries import COUNT_CAP
from dockyard.catalog.tables import image_versions, images
from tests.unit.catalog.factories import WORKSPACE, People

MORE = COUNT_CAP + 2  # images, one public external version each


async def many_images(services: Services) -> None:
    now = time.time()
    async with services.db.write() as conn:
        workspace = (
            await conn.execute(select(workspaces.c.id).where(workspaces.c.name == WORKSPACE))
        ).scalar_one()
        await conn.execute(
            insert(images),
            [
                {
                    "workspace_id": workspace,
                    "name": f"{WORKSPACE}/tool-{i:05d}",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(MORE)
            ],
        )
        ids = (await conn.execute(select(images.c.id).order_by(images.c.name))).scalars().all()
        await conn.execute(  # public: anonymous callers see them too
            insert(repositories),
            [
                {
                    "workspace_id": workspace,
                    "name": f"{WORKSPACE}/tool-{i:05d}",
                    "created_at": now,
                    "visibility": "public",
                }
                for i in range(MORE)
            ],
        )
        await conn.execute(
            insert(image_versions),
            [
                {
                    "image_id": image_id,
                    "version": "1",
                    "source": "external",
                    "status": "unverified" if i else "reachable",
                    "created_at": now,
                    "updated_at": now,
                }
                for i, image_id in enumerate(ids)
            ],
        )


async def test_a_long_list_says_how_many_up_to_the_cap_and_more_beyond(
    services: Services, people: People
) -> None:
    await many_images(services)
    for who in (people.admin, people.reader, people.anonymous):
        versions = await services.catalog.versions(who, limit=50)
        assert (versions.total, versions.total_exact, len(versions.items)) == (COUNT_CAP, False, 50), who
        found = await services.catalog.search(who, limit=50)
        assert (found.total, found.total_exact, len(found.items)) == (COUNT_CAP, False, 50), who


async def test_pages_past_the_cap_still_list_their_rows(services: Services, people: People) -> None:
    await many_images(services)
    last = await services.catalog.versions(people.reader, limit=50, offset=MORE - 1)
    assert [(row.image, last.total_exact) for row in last.items] == [
        (f"{WORKSPACE}/tool-{MORE - 1:05d}", False)
    ]
    beyond = await services.catalog.search(people.reader, limit=50, offset=MORE)
    assert (beyond.items, beyond.total_exact) == ([], False)


async def test_a_short_list_is_counted_exactly(services: Services, people: People) -> None:
    await many_images(services)
    reachable = await services.catalog.versions(people.reader, status="reachable")
    assert (reachable.total, reachable.total_exact, [row.image for row in reachable.items]) == (
        1,
        True,
        [f"{WORKSPACE}/tool-00000"],
    )
    found = await services.catalog.search(people.anonymous, query="tool-0099")
    assert (found.total, found.total_exact) == (10, True)
