"""Who sees which catalog images (:mod:`dockyard.catalog.access`), on a real metadata database
(SQLite and PostgreSQL): one setting, the visibility of the repository named like the image,
for the image and all its versions, internal and external, read by the registry's pull rule
(roles, teams, grants, approved access requests); and someone who may not see an image is
told it is not found, never that it is forbidden."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.tables import audit_log
from dockyard.catalog.service import VersionSettings
from dockyard.errors import Conflict, Forbidden, NotFound
from tests.unit.catalog.factories import WORKSPACE, People, push

WHO = ("anonymous", "outsider", "reader", "developer", "maintainer", "owner", "admin")
SEES = {
    "public": set(WHO),
    "private": {"reader", "developer", "maintainer", "owner", "admin"},
}


async def versions_seen(services: Services, people: People, who: str, name: str = "lab/alpine") -> list[str]:
    return [v.version for v in (await services.catalog.get(getattr(people, who), name)).versions]


@pytest.mark.parametrize("visibility", sorted(SEES))
async def test_an_external_image_is_seen_according_to_its_visibility(
    services: Services, people: People, visibility: str
) -> None:
    await services.catalog.register_external(
        people.developer, WORKSPACE, "alpine:3.20", settings=VersionSettings(visibility=visibility)
    )

    assert (await services.identity.repositories.get(people.owner, "lab/alpine")).visibility == visibility
    for who in WHO:
        if who in SEES[visibility]:
            shown = await services.catalog.get(getattr(people, who), "lab/alpine")
            assert (shown.visibility, [v.version for v in shown.versions]) == (visibility, ["3.20"]), who
        else:
            with pytest.raises(NotFound, match=r"^image 'lab/alpine' not found$"):
                await services.catalog.get(getattr(people, who), "lab/alpine")


async def test_a_new_external_image_takes_the_workspace_default(services: Services, people: People) -> None:
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")
    assert (await services.catalog.get(people.reader, "lab/alpine")).visibility == "private"

    await services.identity.workspaces.update(people.owner, WORKSPACE, default_visibility="public")
    await services.catalog.register_external(people.owner, WORKSPACE, "busybox:1")

    assert [v.version for v in (await services.catalog.get(people.anonymous, "lab/busybox")).versions] == [
        "1"
    ]
    events = await services.catalog.events(people.owner, "lab/busybox")
    assert (events[-1].kind, events[-1].detail) == ("created", {"source": "external", "visibility": "public"})


async def test_every_version_internal_or_external_follows_the_one_setting(
    services: Services, people: People
) -> None:
    await push(services, "lab/alpine", "pushed")  # private: the workspace's default
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3", new_image=False)

    for who in ("anonymous", "outsider"):
        with pytest.raises(NotFound):
            await services.catalog.get(getattr(people, who), "lab/alpine")
        with pytest.raises(NotFound, match="image 'lab/alpine' not found"):
            await services.catalog.version(getattr(people, who), "lab/alpine", "3")
    assert await versions_seen(services, people, "reader") == ["pushed", "3"]

    await services.identity.repositories.set_visibility(people.maintainer, "lab/alpine", "public")

    for who in ("anonymous", "outsider", "reader"):
        assert await versions_seen(services, people, who) == ["pushed", "3"], who
    listed = await services.catalog.versions(people.anonymous, workspace=WORKSPACE)
    assert [(v.image, v.version, v.visibility) for v in listed.items] == [
        ("lab/alpine", "3", "public"),
        ("lab/alpine", "pushed", "public"),
    ]


async def test_a_grant_or_an_approved_request_shows_a_private_external_image(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")
    with pytest.raises(NotFound):
        await services.catalog.get(people.outsider, "lab/alpine")

    await services.identity.repositories.grant_user(people.maintainer, "lab/alpine", "otto", "pull", None)
    assert await versions_seen(services, people, "outsider") == ["3"]
    await services.identity.repositories.revoke_user(people.maintainer, "lab/alpine", "otto")
    with pytest.raises(NotFound):
        await services.catalog.get(people.outsider, "lab/alpine")

    request = await services.identity.requests.create(people.outsider, "lab/alpine", "pull")
    await services.identity.requests.approve(people.maintainer, request.id)
    assert await versions_seen(services, people, "outsider") == ["3"]


async def test_a_change_of_visibility_is_in_the_history_and_the_audit_log(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")

    with pytest.raises(Forbidden):  # the one setting is the maintainers', as the repository's
        await services.identity.repositories.set_visibility(people.developer, "lab/alpine", "public")
    await services.identity.repositories.set_visibility(people.maintainer, "lab/alpine", "public")
    await services.identity.repositories.set_visibility(
        people.maintainer, "lab/alpine", "public"
    )  # no change

    events = await services.catalog.events(people.owner, "lab/alpine")
    changed = [e for e in events if e.kind == "modified"]
    assert [(e.actor, e.version, e.detail) for e in changed] == [
        (
            "mia",
            None,
            {"fields": ["visibility"], "changes": {"visibility": {"before": "private", "after": "public"}}},
        )
    ]
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.actor_name, audit_log.c.detail)
                .where(audit_log.c.action == "repository.visibility", audit_log.c.target == "lab/alpine")
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [(actor, json.loads(detail)["before"], json.loads(detail)["after"]) for actor, detail in rows] == [
        ("mia", "private", "public"),
        ("mia", "public", "public"),
    ]


async def test_a_per_version_access_is_refused_unless_it_is_the_images(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(
        people.owner, WORKSPACE, "alpine:3", settings=VersionSettings(access="workspace")
    )
    assert (await services.catalog.get(people.owner, "lab/alpine")).visibility == "private"

    for settings in (VersionSettings(access="public"), VersionSettings(visibility="public")):
        with pytest.raises(
            Conflict,
            match=r"setting of the whole image .* 'lab/alpine' and all its versions are private",
        ):
            await services.catalog.update_version(people.owner, "lab/alpine", "3", settings)
        with pytest.raises(Conflict, match="PUT /api/v1/images/lab/alpine/visibility"):
            await services.catalog.register_external(
                people.owner, WORKSPACE, "alpine:4", new_image=False, settings=settings
            )
    # The image's own value is accepted (and changes nothing): old clients keep working.
    same = await services.catalog.update_version(
        people.owner, "lab/alpine", "3", VersionSettings(kind="bench", access="private")
    )
    assert same.kind == "bench"
    with pytest.raises(NotFound):
        await services.catalog.get(people.anonymous, "lab/alpine")


async def test_a_member_sees_an_image_whose_versions_are_all_gone(services: Services, people: People) -> None:
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")
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
        with pytest.raises(NotFound, match=f"repository '{name}' not found"):
            await services.identity.repositories.set_visibility(people.outsider, name, "public")

    assert (await services.catalog.version(people.owner, "lab/alpine", "3")).kind == "tool"
