"""Storage used by internal versions, images and workspaces (:mod:`dockyard.catalog.usage`), on a
real metadata database (SQLite and PostgreSQL): each blob counts once per scope, whatever shares it."""

from __future__ import annotations

import pytest

from dockyard.app.services import Services
from dockyard.catalog.usage import ImageUsage, Usage, VersionUsage
from dockyard.errors import NotFound
from tests.support.catalog import gzip_layer, image_config
from tests.support.oci import Blob, oci_index, oci_manifest
from tests.unit.catalog.factories import WORKSPACE, People, push


def size(*blobs: Blob) -> int:
    return sum(blob.size for blob in blobs)


async def test_layers_shared_by_two_versions_count_once_for_the_image(
    services: Services, people: People
) -> None:
    shared, first_only, second_only = gzip_layer("base"), gzip_layer("one"), gzip_layer("two")
    config_1, config_2 = image_config("amd64"), image_config("amd64")
    await push(services, "lab/bwa", "v1", oci_manifest(config_1, [shared, first_only]))
    await push(services, "lab/bwa", "v2", oci_manifest(config_2, [shared, second_only]))
    await services.catalog.register_external(
        people.owner, WORKSPACE, "quay.io/x/bwa:3", name="bwa", new_image=False
    )

    usage, blobs = await Usage(services.catalog).image(people.reader, "lab/bwa")

    assert usage == ImageUsage(
        "lab/bwa",
        size(shared, first_only, second_only, config_1, config_2),
        [  # the external version stores nothing here
            VersionUsage("v1", size(config_1, shared, first_only)),
            VersionUsage("v2", size(config_2, shared, second_only)),
        ],
    )
    assert blobs == {b.digest: b.size for b in (shared, first_only, second_only, config_1, config_2)}


async def test_a_multi_platform_version_counts_the_blobs_of_every_platform(
    services: Services, people: People
) -> None:
    amd64 = oci_manifest(image_config("amd64"), [gzip_layer("amd64")])
    arm64 = oci_manifest(image_config("arm64"), [gzip_layer("arm64")])
    await push(services, "lab/multi", "v1", oci_index([amd64, arm64]))

    usage, _ = await Usage(services.catalog).image(people.reader, "lab/multi")

    assert usage.versions == [VersionUsage("v1", size(*amd64.blobs, *arm64.blobs))]
    assert usage.bytes == size(*amd64.blobs, *arm64.blobs)


async def test_a_workspace_counts_each_blob_once_across_its_images(
    services: Services, people: People
) -> None:
    shared = gzip_layer("shared base")
    one = oci_manifest(image_config("amd64"), [shared, gzip_layer("one")])
    two = oci_manifest(image_config("amd64"), [shared])
    await push(services, "lab/one", "v1", one)
    await push(services, "lab/two", "v1", two)
    await services.catalog.register_external(people.owner, WORKSPACE, "alpine:3")  # no internal version

    usage = await Usage(services.catalog).workspace(people.reader, WORKSPACE)

    assert usage.workspace == WORKSPACE
    assert [(image.image, image.bytes) for image in usage.images] == [
        ("lab/one", size(*one.blobs)),
        ("lab/two", size(*two.blobs)),
    ]
    assert usage.bytes == size(*one.blobs, *two.blobs) - shared.size
    assert (await Usage(services.catalog).workspace(people.admin, WORKSPACE)) == usage


async def test_usage_is_shown_to_those_who_see_it(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")

    with pytest.raises(NotFound, match="workspace 'lab': usage is shown to its members"):
        await Usage(services.catalog).workspace(people.outsider, WORKSPACE)
    with pytest.raises(NotFound, match="workspace 'lab': usage is shown to its members"):
        await Usage(services.catalog).workspace(people.anonymous, WORKSPACE)
    with pytest.raises(NotFound, match="image 'lab/bwa' not found"):
        await Usage(services.catalog).image(people.outsider, "lab/bwa")
    assert (await Usage(services.catalog).workspace(people.outsider, "otto")).images == []  # their own


async def test_pulling_one_repository_shows_that_image_s_usage_not_the_workspace_s(
    services: Services, people: People
) -> None:
    """A team given one repository only: its members see that image's usage; a workspace's usage
    is shown to the workspace's members."""
    shown = oci_manifest(image_config("amd64"), [gzip_layer("open")])
    await push(services, "lab/open", "v1", shown)
    await push(services, "lab/hidden", "v1")
    workspaces = services.identity.workspaces
    await workspaces.create_team(people.owner, WORKSPACE, "guests")
    await workspaces.set_team_member(people.owner, WORKSPACE, "guests", "otto", True)
    await services.identity.repositories.set_team_role(people.owner, "lab/open", "guests", "reader")

    usage, _ = await Usage(services.catalog).image(people.outsider, "lab/open")

    assert (usage.image, usage.bytes) == ("lab/open", size(*shown.blobs))
    with pytest.raises(NotFound, match="image 'lab/hidden' not found"):
        await Usage(services.catalog).image(people.outsider, "lab/hidden")
    with pytest.raises(NotFound, match="usage is shown to its members"):
        await Usage(services.catalog).workspace(people.outsider, WORKSPACE)
    full = await Usage(services.catalog).workspace(people.reader, WORKSPACE)
    assert [image.image for image in full.images] == ["lab/hidden", "lab/open"]
