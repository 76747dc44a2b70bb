"""Who sees which catalog versions (:mod:`dockyard.catalog.access`), on a real metadata database
(SQLite and PostgreSQL): external versions by their ``access``, internal ones by the registry's pull
rules, and someone who may not see an image is told it is not found, never that it is forbidden."""

from __future__ import annotations

import pytest

from dockyard.app.services import Services
from dockyard.catalog.service import VersionSettings
from dockyard.errors import NotFound
from tests.unit.catalog.factories import WORKSPACE, People, push

WHO = ("anonymous", "outsider", "reader", "developer", "maintainer", "owner", "admin")
SEES = {
    "public": set(WHO),
    "workspace": {"reader", "developer", "maintainer", "owner", "admin"},
    "private": {"maintainer", "owner", "admin"},
}


@pytest.mark.parametrize("access", sorted(SEES))
async def test_an_external_version_is_seen_according_to_its_access(
    services: Services, people: People, access: str
) -> None:
    await services.catalog.register_external(
        people.owner, WORKSPACE, "alpine:3.20", settings=VersionSettings(access=access)
    )

    for who in WHO:
        if who in SEES[access]:
            shown = await services.catalog.get(getattr(people, who), "lab/alpine")
            assert [v.version for v in shown.versions] == ["3.20"], who
        else:
            with pytest.raises(NotFound, match=r"^image 'lab/alpine' not found$"):
                await services.catalog.get(getattr(people, who), "lab/alpine")


async def test_each_caller_sees_only_the_versions_meant_for_them(services: Services, people: People) -> None:
    for version, access in (("1", "public"), ("2", "workspace"), ("3", "private")):
        await services.catalog.register_external(
            people.owner,
            WORKSPACE,
            f"alpine:{version}",
            new_image=version == "1",
            settings=VersionSettings(access=access),
        )

    async def versions(who: str) -> list[str]:
        return [v.version for v in (await services.catalog.get(getattr(people, who), "lab/alpine")).versions]

    assert await versions("anonymous") == ["1"]
    assert await versions("outsider") == ["1"]
    assert await versions("developer") == ["1", "2"]
    assert await versions("maintainer") == ["1", "2", "3"]
    with pytest.raises(NotFound, match="has no version '2'"):
        await services.catalog.version(people.outsider, "lab/alpine", "2")


async def test_an_internal_version_is_seen_by_those_who_may_pull_it(
    services: Services, people: People
) -> None:
    manifest = await push(services, "lab/bwa", "v1")  # workspace lab: private repositories by default

    for who in ("reader", "owner", "admin"):
        version = await services.catalog.version(getattr(people, who), "lab/bwa", "v1")
        assert (version.source, version.status, version.digest) == ("internal", "pending", manifest.digest)
    for who in ("outsider", "anonymous"):
        with pytest.raises(NotFound, match="image 'lab/bwa' not found"):
            await services.catalog.get(getattr(people, who), "lab/bwa")
        with pytest.raises(NotFound, match="image 'lab/bwa' not found"):
            await services.catalog.events(getattr(people, who), "lab/bwa")

    await services.identity.repositories.set_visibility(people.maintainer, "lab/bwa", "public")

    assert [v.version for v in (await services.catalog.get(people.anonymous, "lab/bwa")).versions] == ["v1"]


async def test_a_member_sees_an_image_whose_versions_are_all_gone(services: Services, people: People) -> None:
    await services.catalog.register_external(
        people.owner, WORKSPACE, "alpine:3", settings=VersionSettings(access="public")
    )
    await services.deletions.delete_version(people.maintainer, "lab/alpine", "3")

    assert (await services.catalog.get(people.reader, "lab/alpine")).versions == []
    assert (await services.catalog.get(people.admin, "lab/alpine")).versions == []
    for who in ("outsider", "anonymous"):
        with pytest.raises(NotFound):
            await services.catalog.get(getattr(people, who), "lab/alpine")


async def test_someone_who_may_not_see_an_image_may_not_change_it(services: Services, people: People) -> None:
    """Changes by an outsider answer exactly what an image that does not exist answers."""
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")

    for name in ("lab/alpine", "lab/nothing"):
        with pytest.raises(NotFound, match=f"image '{name}' not found"):
            await services.catalog.update_image(people.outsider, name, "mine")
        with pytest.raises(NotFound, match=f"image '{name}' not found"):
            await services.catalog.update_version(people.outsider, name, "3", VersionSettings(kind="bench"))
        with pytest.raises(NotFound, match=f"image '{name}' not found"):
            await services.deletions.delete_version(people.outsider, name, "3")

    assert (await services.catalog.version(people.owner, "lab/alpine", "3")).kind == "tool"
