"""The TRS tool list (:mod:`dockyard.catalog.tools`) is the image views ``Catalog.get`` gives,
kept to their ``tool`` versions, filtered and paged: an image is a tool for a caller exactly
when the caller sees one of its tool versions. Checked on random worlds (:mod:`.random_worlds`)
for every kind of caller, on SQLite and PostgreSQL; examples are derandomized."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockyard.app.services import Services
from dockyard.auth.policy import Subject
from dockyard.catalog.service import Catalog
from dockyard.catalog.tools import ToolFilters
from dockyard.errors import NotFound
from tests.unit.catalog.random_worlds import Image, Version, World, load, subjects, worlds

CALLERS = [subjects()[i] for i in (0, 1, 2, 3, 7, 9)]
SETTINGS = settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def reference(catalog: Catalog, actor: Subject, filters: ToolFilters) -> list[tuple[str, list[str]]]:
    """(name, tool versions) of every image ``Catalog.get`` shows the actor with a tool version."""
    found = []
    for workspace in ("w0", "w1", "w2"):
        for index in range(8):
            name = f"{workspace}/img{index}"
            try:
                view = await catalog.get(actor, name)
            except NotFound:
                continue
            tools = [v.version for v in view.versions if v.kind == "tool"]
            wanted = (
                (filters.organization is None or view.workspace == filters.organization)
                and (not filters.name or filters.name.lower() in name.lower())
                and (not filters.toolname or filters.toolname.lower() in name.partition("/")[2].lower())
                and (not filters.description or filters.description.lower() in view.description.lower())
            )
            if tools and wanted:
                found.append((name, tools))
    return sorted(found)


tool_filters = st.builds(
    ToolFilters,
    name=st.sampled_from((None, "img1", "W1/", "%", "_")),
    toolname=st.sampled_from((None, "IMG2", "w0", "g")),
    organization=st.sampled_from((None, "w0", "w1", "nowhere")),
    description=st.sampled_from((None, "bam", "100%", "fast_")),
)


def external(kind: str) -> Version:
    return Version("external", kind, "unverified", (), None, 1)


# A tool with a bench version beside its tool one (not listed), and an image of bench versions
# only (not a tool), both public; a private internal tool version (members only).
MIXED = World(
    images=(
        Image(1, "aligner for BAM", "public", (external("tool"), external("bench"))),
        Image(2, "", "public", (external("bench"),)),
        Image(2, "Samtools", "private", (Version("internal", "tool", "available", (), 1, 1),)),
    ),
    roles={(2, 2): "reader"},
)


@SETTINGS
@given(world=worlds(), filters=tool_filters, page=st.tuples(st.integers(1, 4), st.integers(0, 6)))
@example(world=MIXED, filters=ToolFilters(), page=(1, 0))
async def test_the_tool_list_is_the_visible_tool_versions_filtered_and_paged(
    services: Services, world: World, filters: ToolFilters, page: tuple[int, int]
) -> None:
    catalog, tools = services.catalog, services.tools
    await load(catalog.db, world, time.time())
    limit, offset = page
    for subject in CALLERS:
        expected = await reference(catalog, subject, filters)
        everything = await tools.search(subject, filters, limit=100, offset=0)
        paged = await tools.search(subject, filters, limit=limit, offset=offset)
        listed: list[tuple[str, Any]] = [(t.name, [v.version for v in t.versions]) for t in everything.items]
        assert listed == expected, subject
        assert (everything.total, paged.total) == (len(expected), len(expected)), subject
        assert paged.items == everything.items[offset : offset + limit], subject
        for name, versions in expected:
            assert [v.version for v in (await tools.get(subject, name)).versions] == versions
        assert await tools.search(subject, ToolFilters(checker=True), limit=10, offset=0) == (
            await tools.search(subject, ToolFilters(organization="nowhere"), limit=10, offset=0)
        )
