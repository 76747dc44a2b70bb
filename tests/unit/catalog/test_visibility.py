"""The catalog's permission rule in SQL (:mod:`dockyard.catalog.visibility`) is the Python rule
(:class:`dockyard.catalog.access.Access`), which is the registry's pull rule for the repository
named like the image, for internal and external versions alike; and the lists built on it (``Catalog.search``,
``Catalog.versions``) are the image views ``Catalog.get`` gives, filtered, sorted and paged:
checked on random worlds (:mod:`.random_worlds`) for every kind of caller, on SQLite and
PostgreSQL. Examples are derandomized, so a run cannot flake on a new draw."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dockyard.auth.facts import allowed
from dockyard.auth.policy import PULL
from dockyard.catalog.access import Access
from dockyard.catalog.queries import SORTS
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import images
from dockyard.catalog.visibility import image_visible, resolve
from dockyard.db.engine import Database
from tests.unit.catalog.random_worlds import (
    Grant,
    Image,
    Permission,
    Version,
    World,
    load,
    reference_search,
    reference_versions,
    subjects,
    worlds,
)

SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def internal() -> Version:
    return Version("internal", "tool", "available", ("linux/amd64",), 10, 1)


def external() -> Version:
    return Version("external", "bench", "unverified", (), None, 2)


PRIVATE = "private"
# Worlds where one clause of the rule decides (the random ones find them too, but not every run).
EDGES = [
    # A robot's role outside its home workspace shows nothing there, external versions included.
    World(
        images=(Image(2, "", PRIVATE, (internal(), external(), external())),),
        permissions=(Permission("robot", 1, 2, None, "maintainer"),),
    ),
    # Grants: revoked, expired, still running, one that gives nothing, a lasting one.
    World(
        images=tuple(Image(1, "", PRIVATE, (internal(),)) for _ in range(5)),
        grants=(
            Grant(3, 0, "pull", None, True),
            Grant(3, 1, "pull", -1.0, False),
            Grant(3, 2, "push", 1.0, False),
            Grant(3, 3, "delete", None, False),
            Grant(3, 4, "pull", None, False),
        ),
    ),
    # Team roles: on a repository but recorded in another workspace; on a whole workspace;
    # a role that does not exist.
    World(
        images=(
            Image(1, "", PRIVATE, (internal(),)),
            Image(2, "", PRIVATE, (internal(), external())),
            Image(3, "", None, (internal(),)),
        ),
        team_members=frozenset({(1, 4), (3, 5), (4, 6)}),
        permissions=(
            Permission("team", 1, 2, 0, "reader"),
            Permission("team", 3, 2, None, "reader"),
            Permission("team", 4, 3, None, "guest"),
        ),
    ),
    # No such role; an image without versions; versions without a repository (members only);
    # a public image's external version (everyone, anonymous callers included).
    World(
        images=(
            Image(1, "", "public", (internal(),)),
            Image(1, "", None, ()),
            Image(1, "", None, (internal(), external())),
            Image(2, "", "public", (external(),)),
        ),
        roles={(1, 2): "guest", (1, 3): "reader"},
    ),
    # Every role in the workspace sees a private image's external versions (no longer only
    # maintainers); a team's role that does not exist gives nothing on a repository either.
    World(
        images=(Image(1, "", PRIVATE, (internal(), external(), external())),),
        roles={(1, 2): "reader", (1, 3): "developer", (1, 4): "maintainer", (1, 5): "owner"},
        team_members=frozenset({(1, 6)}),
        permissions=(Permission("team", 1, 1, 0, "guest"),),
    ),
    # Robot permissions on repositories: at home, elsewhere, and with no such role.
    World(
        images=(Image(1, "", PRIVATE, (internal(),)), Image(2, "", PRIVATE, (internal(),))),
        permissions=(
            Permission("robot", 1, 1, 0, "reader"),
            Permission("robot", 1, 2, 1, "reader"),
            Permission("robot", 2, 2, 1, "guest"),
        ),
    ),
]


# The lists are built on the rule checked for every caller above; a few callers suffice there.
LIST_CALLERS = [subjects()[i] for i in (0, 1, 2, 3, 7, 9)]
LISTS = settings(SETTINGS, max_examples=15)


@pytest.fixture
async def catalog(database_url: str) -> AsyncIterator[Catalog]:
    db = Database(database_url)
    try:
        yield Catalog(db)
    finally:
        await db.dispose()


def edges(test: Any) -> Any:
    for world in EDGES:
        test = example(world=world)(test)
    return test


@SETTINGS
@given(world=worlds())
@edges
async def test_the_sql_rule_is_the_python_rule(catalog: Catalog, world: World) -> None:
    now = time.time()
    await load(catalog.db, world, now)
    async with catalog.db.read() as conn:
        every_image = (await conn.execute(select(images.c.id, images.c.name))).all()
    for subject in subjects():
        async with catalog.db.read() as conn:
            viewer = await resolve(conn, subject, now)
            seen = {row[0] for row in await conn.execute(select(images.c.id).where(image_visible(viewer)))}
            access = Access(conn, subject)
            expected = {image_id for image_id, name in every_image if await access.sees(name)}
        # The one rule is the registry's: who sees an image (with all its versions) may pull
        # its repository, and the other way round (admins see every image, whatever the scopes).
        pulls = {
            image_id
            for image_id, name in every_image
            if PULL in (await allowed(catalog.db, subject, name, now)).actions
        }
        assert seen == expected, subject
        assert seen == (set(expected) if subject.is_admin else pulls), subject


filters = st.fixed_dictionaries(
    {},
    optional={
        "workspace": st.sampled_from(("w0", "w1", "", "nowhere")),
        "source": st.sampled_from(("internal", "external", "")),
        "kind": st.sampled_from(("tool", "bench")),
        "status": st.sampled_from(("available", "unverified", "")),
        "platform": st.sampled_from(("linux/arm64", "linux/arm64/v8", "linux/amd64", "linux")),
        "query": st.sampled_from(("img1", "IMG", "bam", "%", "_", "w1/")),
    },
)
pages = st.tuples(st.integers(1, 4), st.integers(0, 6))


@LISTS
@given(world=worlds(), chosen=filters, page=pages)
@example(world=EDGES[0], chosen={"source": ""}, page=(2, 0))  # an empty filter: versions, not images
async def test_the_image_list_is_the_image_views_filtered_and_paged(
    catalog: Catalog, world: World, chosen: dict[str, Any], page: tuple[int, int]
) -> None:
    await load(catalog.db, world, time.time())
    limit, offset = page
    for subject in LIST_CALLERS:
        expected = await reference_search(catalog, subject, **chosen)
        everything = await catalog.search(subject, limit=500, **chosen)
        paged = await catalog.search(subject, limit=limit, offset=offset, **chosen)
        assert everything.items == expected, subject
        assert (everything.total, paged.total) == (len(expected), len(expected)), subject
        assert paged.items == expected[offset : offset + limit], subject


@LISTS
@given(
    world=worlds(),
    chosen=filters.map(lambda found: {k: v for k, v in found.items() if v}),
    sort=st.sampled_from(SORTS),
    order=st.sampled_from(("asc", "desc")),
    page=pages,
)
async def test_the_version_list_is_every_visible_version_sorted_and_paged(
    catalog: Catalog, world: World, chosen: dict[str, Any], sort: str, order: str, page: tuple[int, int]
) -> None:
    await load(catalog.db, world, time.time())
    limit, offset = page
    for subject in LIST_CALLERS:
        expected = await reference_versions(catalog, subject, sort, order, **chosen)
        everything = await catalog.versions(subject, sort=sort, order=order, limit=500, **chosen)
        paged = await catalog.versions(subject, sort=sort, order=order, limit=limit, offset=offset, **chosen)
        listed = [(v.workspace, v.image, v.version, v.description) for v in everything.items]
        assert listed == expected, (subject, sort, order)
        assert (everything.total, paged.total) == (len(expected), len(expected)), subject
        assert paged.items == everything.items[offset : offset + limit], subject
