"""What the catalog refuses at push time (:mod:`dockyard.catalog.admission`), through the registry's
manifest service as the application wires it, on a real metadata database (SQLite and PostgreSQL):
a refused push is the spec's DENIED with a reason that says what to do, and stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.tables import repositories
from dockyard.registry.errors import ManifestBlobUnknown, PushRefused
from dockyard.registry.tables import tags
from tests.support.catalog import gzip_layer, image_config
from tests.support.oci import artifact, oci_manifest
from tests.unit.catalog.factories import WORKSPACE, People, image, index_of, push
from tests.unit.registry.factories import push_blob, push_manifest

NO_AMD64 = "the workspace 'lab' requires linux/amd64: this image has no linux/amd64 platform"


async def tags_of(services: Services, repository: str) -> list[str]:
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(tags.c.name)
            .join(repositories, repositories.c.id == tags.c.repository_id)
            .where(repositories.c.name == repository)
            .order_by(tags.c.name)
        )
        return [row[0] for row in rows]


async def test_a_tag_push_may_not_replace_an_external_version(services: Services, people: People) -> None:
    await push(services, "lab/alpine", "3.19")  # the image exists, with an internal version
    await services.catalog.register_external(
        people.developer, WORKSPACE, "docker.io/library/alpine:3.20", name="alpine", new_image=False
    )

    with pytest.raises(PushRefused) as refused:
        await push(services, "lab/alpine", "3.20")

    assert str(refused.value) == (
        "lab/alpine:3.20 is an external version in the catalog, "
        "a reference to docker.io/library/alpine:3.20; "
        "a push may not replace it. Push another tag, or remove the external version first "
        "(DELETE /api/v1/images/lab/alpine/versions/3.20, as a maintainer) and push again"
    )
    assert await tags_of(services, "lab/alpine") == ["3.19"]
    version = await services.catalog.version(people.reader, "lab/alpine", "3.20")
    assert (version.source, version.external_reference) == ("external", "docker.io/library/alpine:3.20")


async def test_other_tags_and_pushes_by_digest_are_admitted_beside_an_external_version(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "docker.io/library/alpine:3.20")

    by_digest = image()
    await push_manifest(services, "lab/alpine", by_digest)  # untagged: not a version
    await push(services, "lab/alpine", "3.21")
    await push(services, "lab/other", "3.20")  # the same tag in another image

    assert await tags_of(services, "lab/alpine") == ["3.21"]
    shown = await services.catalog.get(people.reader, "lab/alpine")
    assert [(v.version, v.source) for v in shown.versions] == [("3.20", "external"), ("3.21", "internal")]


async def test_a_strict_workspace_refuses_a_tagged_image_without_amd64(
    services: Services, people: People
) -> None:
    await services.catalog.set_policy(people.owner, WORKSPACE, True)

    with pytest.raises(PushRefused) as refused:
        await push(services, "lab/tool", "v1", image("arm64"))

    assert str(refused.value).startswith(NO_AMD64)
    assert await tags_of(services, "lab/tool") == []
    with pytest.raises(PushRefused, match=NO_AMD64):
        await push(services, "lab/tool", "v1", index_of("arm64", "s390x"))


async def test_a_strict_workspace_admits_amd64_images_artifacts_and_untagged_pushes(
    services: Services, people: People
) -> None:
    await services.catalog.set_policy(people.owner, WORKSPACE, True)

    amd64 = await push(services, "lab/tool", "amd", image("amd64"))
    await push(services, "lab/tool", "multi", index_of("arm64", "amd64"))
    await push(services, "lab/tool", "sbom", artifact(amd64, "application/spdx+json"))  # not an image
    await push_manifest(services, "lab/tool", image("arm64"))  # by digest: not a version

    assert await tags_of(services, "lab/tool") == ["amd", "multi", "sbom"]


async def test_without_the_policy_any_platform_is_admitted(services: Services, people: People) -> None:
    await services.catalog.set_policy(people.owner, WORKSPACE, False)

    await push(services, "lab/tool", "arm", image("arm64"))
    await push(services, "zoo/tool", "arm", image("arm64"))  # a workspace with no policy at all

    assert await tags_of(services, "lab/tool") == ["arm"]
    assert await tags_of(services, "zoo/tool") == ["arm"]


async def test_a_push_naming_blobs_not_uploaded_is_left_to_the_registry_s_own_check(
    services: Services, people: People
) -> None:
    """The policy cannot read a config that is not there: the registry refuses the push itself."""
    await services.catalog.set_policy(people.owner, WORKSPACE, True)
    manifest = oci_manifest(image_config("arm64"), [gzip_layer("never uploaded")])

    with pytest.raises(ManifestBlobUnknown):
        await services.manifests.put("lab/tool", "v1", manifest.body, manifest.media_type, actor=None)

    for blob in manifest.blobs:
        await push_blob(services, "lab/tool", blob)
    with pytest.raises(PushRefused, match=NO_AMD64):  # now it can look, and refuses
        await services.manifests.put("lab/tool", "v1", manifest.body, manifest.media_type, actor=None)
