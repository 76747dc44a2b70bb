"""Listing the catalog and its workspace policy (:class:`dockyard.catalog.service.Catalog`), on a
real metadata database (SQLite and PostgreSQL): each caller lists only what they may see, filters
keep the matching versions, and only owners set the policy."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.app.services import Services
from dockyard.auth.errors import AuthenticationFailed
from dockyard.catalog.service import VersionSettings, platform_matches
from dockyard.errors import Forbidden, NotFound
from tests.unit.catalog.factories import WORKSPACE, People, image, inspect_all, push


async def catalog_of_two_workspaces(services: Services, people: People) -> None:
    """lab/alpine (external, public), lab/bench (external bench, described), lab/bwa (internal
    linux/arm64 image, inspected, plus an external version), zoo/tool (the outsider's workspace)."""
    catalog = services.catalog
    await catalog.register_external(
        people.owner, WORKSPACE, "alpine:3", settings=VersionSettings(access="public")
    )
    await catalog.register_external(
        people.owner,
        WORKSPACE,
        "quay.io/lab/suite:2.1",
        name="bench",
        description="The Benchmark Suite",
        settings=VersionSettings(kind="bench"),
    )
    await push(services, "lab/bwa", "v1", image("arm64"))
    assert await inspect_all(services) == 1
    await catalog.register_external(
        people.owner, WORKSPACE, "quay.io/lab/bwa:0.7", name="bwa", new_image=False
    )
    await services.identity.workspaces.create(people.outsider, "zoo")
    await catalog.register_external(people.outsider, "zoo", "quay.io/zoo/tool:1")


async def names(services: Services, people: People, who: str, **filters: Any) -> list[str]:
    page = await services.catalog.search(getattr(people, who), **filters)
    assert page.total == len(page.items)
    return [item.name for item in page.items]


async def test_each_caller_lists_the_images_they_may_see(services: Services, people: People) -> None:
    await catalog_of_two_workspaces(services, people)

    assert await names(services, people, "admin") == ["lab/alpine", "lab/bench", "lab/bwa", "zoo/tool"]
    assert await names(services, people, "reader") == ["lab/alpine", "lab/bench", "lab/bwa"]
    assert await names(services, people, "outsider") == ["lab/alpine", "zoo/tool"]
    assert await names(services, people, "anonymous") == ["lab/alpine"]
    assert await names(services, people, "admin", workspace="zoo") == ["zoo/tool"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"query": "BENCHMARK"}, ["lab/bench"]),  # the description, whatever the case
        ({"query": "alp"}, ["lab/alpine"]),  # part of the name
        ({"source": "internal"}, ["lab/bwa"]),
        ({"kind": "bench"}, ["lab/bench"]),
        ({"status": "available"}, ["lab/bwa"]),
        ({"status": "unverified"}, ["lab/alpine", "lab/bench", "lab/bwa", "zoo/tool"]),
        ({"platform": "linux/arm64"}, ["lab/bwa"]),
        ({"platform": "linux/amd64"}, []),
    ],
)
async def test_filters_keep_the_images_with_a_matching_version(
    services: Services, people: People, filters: dict[str, str], expected: list[str]
) -> None:
    await catalog_of_two_workspaces(services, people)

    assert await names(services, people, "admin", **filters) == expected


async def test_a_filtered_image_shows_only_its_matching_versions(services: Services, people: People) -> None:
    await catalog_of_two_workspaces(services, people)

    everything = (await services.catalog.search(people.reader, workspace=WORKSPACE)).items[2]
    external = (await services.catalog.search(people.reader, source="external", query="bwa")).items[0]
    internal = (await services.catalog.search(people.reader, source="internal")).items[0]

    assert (everything.name, everything.source, [v.version for v in everything.versions]) == (
        "lab/bwa",
        "mixed",
        ["v1", "0.7"],
    )
    assert (external.source, [v.version for v in external.versions]) == ("external", ["0.7"])
    assert (internal.source, [v.version for v in internal.versions]) == ("internal", ["v1"])
    assert internal.versions[0].platforms == ["linux/arm64"]
    assert internal.versions[0].has_amd64 is False


async def test_a_page_of_the_listing(services: Services, people: People) -> None:
    await catalog_of_two_workspaces(services, people)

    page = await services.catalog.search(people.admin, limit=2, offset=1)

    assert ([item.name for item in page.items], page.total, page.limit, page.offset) == (
        ["lab/bench", "lab/bwa"],
        4,
        2,
        1,
    )


@pytest.mark.parametrize(
    ("wanted", "platforms", "matches"),
    [
        ("linux/arm64", ["linux/arm64/v8"], True),  # any variant
        ("linux/arm64/v8", ["linux/arm64/v8"], True),
        ("linux/arm64/v8", ["linux/arm64"], False),
        ("linux/arm", ["linux/arm64"], False),  # not a prefix of the architecture
        ("linux/amd64", [], False),
    ],
)
def test_a_platform_filter_matches_variants_of_an_architecture(
    wanted: str, platforms: list[str], matches: bool
) -> None:
    assert platform_matches(wanted, platforms) is matches


async def test_only_owners_set_the_amd64_policy(services: Services, people: People) -> None:
    assert await services.catalog.get_policy(people.reader, WORKSPACE) is False

    assert await services.catalog.set_policy(people.owner, WORKSPACE, True) is True

    assert await services.catalog.get_policy(people.reader, WORKSPACE) is True
    assert await services.catalog.amd64_workspaces([WORKSPACE, "olga", "nowhere"]) == {WORKSPACE}
    assert await services.catalog.amd64_workspaces([]) == set()
    with pytest.raises(Forbidden, match="this needs the owner role"):
        await services.catalog.set_policy(people.maintainer, WORKSPACE, False)
    with pytest.raises(Forbidden, match="this needs the reader role"):
        await services.catalog.get_policy(people.outsider, WORKSPACE)
    with pytest.raises(AuthenticationFailed):
        await services.catalog.set_policy(people.anonymous, WORKSPACE, False)
    with pytest.raises(NotFound, match="workspace 'nowhere' not found"):
        await services.catalog.get_policy(people.admin, "nowhere")

    assert await services.catalog.set_policy(people.admin, WORKSPACE, False) is False  # set again: replaced
    assert await services.catalog.amd64_workspaces([WORKSPACE]) == set()
