"""Registering external images and changing catalog entries (:class:`dockyard.catalog.service.Catalog`),
on a real metadata database (SQLite and PostgreSQL): what is stored and shown, names unique across
Dockyard, what is refused and why, who may change what, and the history each change leaves."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dockyard.app.services import Services
from dockyard.auth.errors import AuthenticationFailed
from dockyard.catalog.service import VersionSettings
from dockyard.catalog.views import UpstreamInfo
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.registry.errors import ManifestUnknown
from tests.unit.catalog.factories import WORKSPACE, People, event_kinds, push

SAMTOOLS = "quay.io/biocontainers/samtools:1.19--h50ea8bc_0"
DIGEST = "sha256:" + "c" * 64


async def test_an_external_image_is_named_and_versioned_after_its_reference(
    services: Services, people: People
) -> None:
    added = await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS, description="SAM")

    assert (added.image, added.version, added.source, added.status) == (
        "lab/samtools",
        "1.19--h50ea8bc_0",
        "external",
        "unverified",
    )
    assert added.external_reference == SAMTOOLS
    assert added.upstream == UpstreamInfo("quay.io", "biocontainers/samtools", "quay", None, None)
    assert (added.kind, added.regions, added.cluster_compatibility) == ("tool", [], [])
    assert (added.digest, added.platforms, added.has_amd64) == (None, [], None)  # not verified yet
    assert [w.code for w in added.warnings] == ["not_copied"]  # a release tag: no moving_tag warning
    assert added.created_by == "dev"
    shown = await services.catalog.get(people.reader, "lab/samtools")
    assert (shown.name, shown.workspace, shown.description, shown.source, shown.visibility) == (
        "lab/samtools",
        "lab",
        "SAM",
        "external",
        "private",  # the workspace's default for new repositories
    )
    assert (shown.created_by, shown.updated_by, shown.built_at) == ("dev", "dev", None)
    assert shown.versions == [added]
    assert await event_kinds(services, "lab/samtools") == [
        ("created", None),
        ("version.added", "1.19--h50ea8bc_0"),
    ]


async def test_a_moving_tag_is_registered_with_a_warning_to_pin_it(
    services: Services, people: People
) -> None:
    added = await services.catalog.register_external(people.developer, WORKSPACE, "alpine")

    assert (added.image, added.version, added.external_reference) == (
        "lab/alpine",
        "latest",
        "docker.io/library/alpine:latest",
    )
    assert added.upstream == UpstreamInfo("docker.io", "library/alpine", "dockerhub", None, None)
    moving = [w.message for w in added.warnings if w.code == "moving_tag"]
    assert moving == [
        "no tag given, so tag 'latest' is used and it moves: pin the digest "
        "(docker.io/library/alpine@sha256:...) to keep this version reproducible"
    ]


async def test_a_reference_by_digest_only_gets_a_version_named_after_the_digest(
    services: Services, people: People
) -> None:
    added = await services.catalog.register_external(
        people.developer, WORKSPACE, f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/tool@{DIGEST}"
    )

    assert (added.image, added.version, added.digest) == ("lab/tool", "sha256-cccccccccccc", DIGEST)
    assert added.upstream == UpstreamInfo(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "team/tool", "ecr", "123456789012", "eu-west-1"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [("aligners/bwa", "lab/aligners/bwa"), ("lab/bwa", "lab/bwa"), ("other/bwa", "lab/other/bwa")],
)
async def test_a_chosen_name_is_always_inside_the_workspace(
    services: Services, people: People, name: str, expected: str
) -> None:
    added = await services.catalog.register_external(
        people.developer, WORKSPACE, "docker.io/biocontainers/bwa:0.7.17", name=name, version="2024.1"
    )

    assert (added.image, added.version) == (expected, "2024.1")


async def test_image_names_are_unique_across_dockyard(services: Services, people: People) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)
    await push(services, "lab/bwa", "v1")  # an internal image of the same workspace

    for reference in (SAMTOOLS, "docker.io/biocontainers/samtools:1.20", "docker.io/biocontainers/bwa:1"):
        with pytest.raises(Conflict, match="image names are unique across Dockyard"):
            await services.catalog.register_external(people.owner, WORKSPACE, reference)

    assert [v.version for v in (await services.catalog.get(people.owner, "lab/samtools")).versions] == [
        "1.19--h50ea8bc_0"
    ]
    assert [v.source for v in (await services.catalog.get(people.owner, "lab/bwa")).versions] == ["internal"]


async def test_a_version_is_added_to_an_existing_image(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")

    await services.catalog.register_external(
        people.developer, WORKSPACE, "docker.io/biocontainers/bwa:0.7.17", name="bwa", new_image=False
    )

    shown = await services.catalog.get(people.developer, "lab/bwa")
    assert [(v.version, v.source) for v in shown.versions] == [("v1", "internal"), ("0.7.17", "external")]
    assert shown.source == "mixed"
    assert (await event_kinds(services, "lab/bwa"))[-1] == ("version.added", "0.7.17")


async def test_a_version_name_is_taken_once_per_image(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")
    await services.catalog.register_external(
        people.developer, WORKSPACE, "docker.io/biocontainers/bwa:2", name="bwa", new_image=False
    )

    for version in ("v1", "2"):  # an internal version, an external one
        with pytest.raises(Conflict, match=f"already has a version '{version}'"):
            await services.catalog.register_external(
                people.developer, WORKSPACE, "quay.io/x/bwa:3", name="bwa", version=version, new_image=False
            )


async def test_a_version_for_an_image_that_does_not_exist_is_refused(
    services: Services, people: People
) -> None:
    with pytest.raises(NotFound, match="image 'lab/bwa' not found"):
        await services.catalog.register_external(
            people.developer, WORKSPACE, "docker.io/biocontainers/bwa:2", new_image=False
        )


@pytest.mark.parametrize(
    ("reference", "fields", "message"),
    [
        ("https://docker.io/library/alpine:3", {}, "docker.io/library/alpine:3"),
        ("alpine:3", {"version": "3 beta"}, "must be 1-128 letters, digits"),
        ("alpine:3", {"version": "v" * 129}, "must be 1-128 letters, digits"),
        ("alpine:3", {"settings": VersionSettings(kind="app")}, "type is 'tool' or 'bench', not 'app'"),
        ("alpine:3", {"settings": VersionSettings(access="everyone")}, "access is one of public, workspace"),
        (
            "alpine:3",
            {"settings": VersionSettings(visibility="workspace")},
            "visibility is 'public' or 'private'",
        ),
        (
            "alpine:3",
            {"settings": VersionSettings(access="public", visibility="private")},
            "access 'public' and visibility 'private' disagree",
        ),
        ("alpine:3", {"settings": VersionSettings(regions=[""])}, "a region is a name of 1 to 64"),
        ("alpine:3", {"settings": VersionSettings(regions=["r" * 65])}, "a region is a name of 1 to 64"),
        (
            "alpine:3",
            {"settings": VersionSettings(kind="tool", cluster_compatibility=["hpc1"])},
            "cluster_compatibility is for bench images only; a tool image cannot list clusters (hpc1)",
        ),
        (
            "alpine:3",
            {"settings": VersionSettings(cluster_compatibility=["hpc1"])},  # the kind defaults to tool
            "cluster_compatibility is for bench images only",
        ),
    ],
)
async def test_invalid_registrations_are_refused_and_leave_nothing(
    services: Services, people: People, reference: str, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(Invalid, match=re.escape(message)):
        await services.catalog.register_external(people.developer, WORKSPACE, reference, **fields)

    assert (await services.catalog.search(people.admin)).total == 0


async def test_a_bench_image_lists_the_clusters_it_runs_on(services: Services, people: People) -> None:
    settings = VersionSettings(kind="bench", regions=["eu"], cluster_compatibility=["hpc1"])

    added = await services.catalog.register_external(
        people.developer, WORKSPACE, "alpine:3", settings=settings
    )

    assert (added.kind, added.regions, added.cluster_compatibility) == ("bench", ["eu"], ["hpc1"])


async def test_a_developer_registering_a_private_image_sees_it_as_every_member_does(
    services: Services, people: People
) -> None:
    """The former ``private`` (maintainers only) is the image's private: every member sees it."""
    added = await services.catalog.register_external(
        people.developer, WORKSPACE, "alpine:3", settings=VersionSettings(access="private")
    )

    assert (added.image, added.version, added.created_by) == ("lab/alpine", "3", "dev")
    for who in (people.developer, people.reader):
        assert (await services.catalog.get(who, "lab/alpine")).visibility == "private"
    with pytest.raises(NotFound, match="image 'lab/alpine' not found"):
        await services.catalog.get(people.outsider, "lab/alpine")


async def test_registering_needs_the_developer_role(services: Services, people: People) -> None:
    for who in (people.reader, people.outsider):
        with pytest.raises(Forbidden, match="this needs the developer role"):
            await services.catalog.register_external(who, WORKSPACE, "alpine:3")
    with pytest.raises(AuthenticationFailed):
        await services.catalog.register_external(people.anonymous, WORKSPACE, "alpine:3")
    with pytest.raises(NotFound, match="workspace 'nowhere' not found"):
        await services.catalog.register_external(people.admin, "nowhere", "alpine:3")

    assert (await services.catalog.search(people.admin)).total == 0


async def test_a_developer_changes_the_description(services: Services, people: People) -> None:
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")

    changed = await services.catalog.update_image(people.developer, "lab/alpine", "a small base")

    assert (changed.description, changed.updated_by, changed.created_by) == ("a small base", "dev", "olga")
    assert (await event_kinds(services, "lab/alpine"))[-1] == ("modified", None)
    with pytest.raises(Forbidden, match="this needs the developer role"):
        await services.catalog.update_image(people.reader, "lab/alpine", "mine")
    with pytest.raises(NotFound, match="image 'lab/alpine' not found"):  # not Forbidden: not a member
        await services.catalog.update_image(people.outsider, "lab/alpine", "mine")
    assert (await services.catalog.get(people.reader, "lab/alpine")).description == "a small base"


async def test_a_version_s_settings_change_and_the_change_is_recorded(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3")
    settings = VersionSettings(
        kind="bench", access="workspace", regions=["eu", "us"], cluster_compatibility=["hpc1"]
    )

    changed = await services.catalog.update_version(people.developer, "lab/alpine", "3", settings)

    assert (changed.kind, changed.regions, changed.cluster_compatibility) == ("bench", ["eu", "us"], ["hpc1"])
    assert await services.catalog.version(people.reader, "lab/alpine", "3") == changed
    events = await services.catalog.events(people.developer, "lab/alpine")
    assert (events[0].kind, events[0].version, events[0].actor) == ("modified", "3", "dev")
    assert events[0].detail == {  # the image's own visibility, given again, changed nothing
        "fields": ["cluster_compatibility", "kind", "regions"],
        "changes": {
            "cluster_compatibility": {"before": [], "after": ["hpc1"]},
            "kind": {"before": "tool", "after": "bench"},
            "regions": {"before": [], "after": ["eu", "us"]},
        },
    }


async def test_a_tool_image_cannot_keep_clusters(services: Services, people: People) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3")
    with pytest.raises(Invalid, match="a tool image cannot list clusters"):
        await services.catalog.update_version(
            people.developer, "lab/alpine", "3", VersionSettings(cluster_compatibility=["hpc1"])
        )
    bench = VersionSettings(kind="bench", cluster_compatibility=["hpc1"])
    await services.catalog.update_version(people.developer, "lab/alpine", "3", bench)

    with pytest.raises(Invalid, match="or clear cluster_compatibility"):
        await services.catalog.update_version(
            people.developer, "lab/alpine", "3", VersionSettings(kind="tool")
        )

    tool = VersionSettings(kind="tool", cluster_compatibility=[])
    changed = await services.catalog.update_version(people.developer, "lab/alpine", "3", tool)
    assert (changed.kind, changed.cluster_compatibility) == ("tool", [])


async def test_changing_a_version_that_is_not_there_is_not_found(services: Services, people: People) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3")

    for version in ("5", "4"):
        with pytest.raises(NotFound, match=f"image 'lab/alpine' has no version '{version}'"):
            await services.catalog.update_version(
                people.developer, "lab/alpine", version, VersionSettings(kind="bench")
            )


async def test_a_maintainer_deletes_an_external_version(services: Services, people: People) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3")
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:4", new_image=False)
    with pytest.raises(Forbidden, match="this needs the maintainer role"):
        await services.deletions.delete_version(people.developer, "lab/alpine", "3")

    await services.deletions.delete_version(people.maintainer, "lab/alpine", "3")

    assert [v.version for v in (await services.catalog.get(people.reader, "lab/alpine")).versions] == ["4"]
    assert (await event_kinds(services, "lab/alpine"))[-1] == ("version.deleted", "3")
    with pytest.raises(NotFound, match="has no version '3'"):
        await services.deletions.delete_version(people.maintainer, "lab/alpine", "3")


async def test_an_internal_version_is_deleted_with_its_tag(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")
    await push(services, "lab/bwa", "v2")

    await services.deletions.delete_version(people.maintainer, "lab/bwa", "v1")

    assert [v.version for v in (await services.catalog.get(people.owner, "lab/bwa")).versions] == ["v2"]
    with pytest.raises(ManifestUnknown):
        await services.manifests.get("lab/bwa", "v1")
    assert (await services.manifests.get("lab/bwa", "v2")).digest


async def test_the_history_lists_newest_first_to_those_who_see_the_image(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3")
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:4", new_image=False)
    await services.catalog.update_image(people.developer, "lab/alpine", "base")

    events = await services.catalog.events(people.reader, "lab/alpine")

    assert [(e.kind, e.version, e.actor) for e in events] == [
        ("modified", None, "dev"),
        ("version.added", "4", "olga"),
        ("version.added", "3", "dev"),
        ("created", None, "dev"),
    ]
    assert events[1].detail == {"reference": "docker.io/library/alpine:4"}
    assert events[3].detail == {"source": "external", "visibility": "private"}
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)
    assert [e.kind for e in await services.catalog.events(people.reader, "lab/alpine", limit=2)] == [
        "modified",
        "version.added",
    ]
    with pytest.raises(NotFound, match="image 'lab/alpine' not found"):
        await services.catalog.events(people.outsider, "lab/alpine")
