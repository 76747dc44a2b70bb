"""Deleting versions, images, repositories and workspaces (:mod:`dockyard.catalog.deletion`,
:meth:`dockyard.tenancy.workspaces.Workspaces.delete`) on a real metadata database (SQLite and
PostgreSQL): who may, what the registry answers after, what the audit log and the image's
history keep, and that a deleted name is free again."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth import audit
from dockyard.auth.tables import repositories
from dockyard.builds.definitions import DefinitionInput
from dockyard.catalog.immutability import TagRules
from dockyard.errors import Forbidden, NotFound, StillHolds
from dockyard.registry.errors import ManifestUnknown, NameUnknown, PushRefused
from tests.unit.catalog.factories import WORKSPACE, People, image, push
from tests.unit.registry.factories import push_manifest


async def actions(services: Services) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in await audit.query(services.db, limit=50)]


async def repository_names(services: Services) -> list[str]:
    async with services.db.read() as conn:
        return [
            row[0] for row in await conn.execute(select(repositories.c.name).order_by(repositories.c.name))
        ]


async def test_a_maintainer_deletes_an_image_with_every_version_and_tag(
    services: Services, people: People
) -> None:
    await push(services, "lab/bwa", "v1")
    await push(services, "lab/bwa", "v2")
    await services.catalog.register_external(
        people.developer,
        WORKSPACE,
        "docker.io/biocontainers/bwa:0.7",
        name="bwa",
        version="ext",
        new_image=False,
    )
    assert (await services.catalog.get(people.maintainer, "lab/bwa")).may_delete
    assert not (await services.catalog.get(people.developer, "lab/bwa")).may_delete
    # The list says the same as the image, for everyone who sees it.
    for who in (people.admin, people.owner, people.maintainer, people.developer, people.reader):
        [listed] = (await services.catalog.search(who, workspace=WORKSPACE)).items
        assert listed.may_delete == (await services.catalog.get(who, "lab/bwa")).may_delete
    assert [i.may_delete for i in (await services.catalog.search(people.owner)).items] == [True]

    gone = await services.deletions.delete_image(people.maintainer, "lab/bwa", "192.0.2.7")

    assert gone == ["ext", "v1", "v2"]
    with pytest.raises(NotFound):
        await services.catalog.get(people.owner, "lab/bwa")
    for tag in ("v1", "v2"):
        with pytest.raises(ManifestUnknown):
            await services.manifests.get("lab/bwa", tag)
    with pytest.raises(NameUnknown):
        await services.manifests.tags("lab/bwa", None, None)
    assert "lab/bwa" not in await services.manifests.catalog(None, None)
    assert ("image.delete", "lab/bwa") in await actions(services)
    history = await services.deletions.events(people.reader, "lab/bwa")
    assert (history[0].kind, history[0].actor, history[0].detail) == (
        "image.deleted",
        "mia",
        {"versions": ["ext", "v1", "v2"]},
    )
    assert [e.kind for e in history[1:]] == ["version.added", "pushed", "pushed", "created"]
    with pytest.raises(NotFound):  # an outsider learns nothing of it
        await services.deletions.events(people.outsider, "lab/bwa")


async def test_a_member_without_the_role_is_refused_and_nothing_is_lost(
    services: Services, people: People
) -> None:
    await push(services, "lab/bwa", "v1")

    for who in (people.developer, people.reader):
        with pytest.raises(Forbidden, match="needs the maintainer role"):
            await services.deletions.delete_image(who, "lab/bwa")
        with pytest.raises(Forbidden, match="needs the maintainer role"):
            await services.deletions.delete_version(who, "lab/bwa", "v1")
        with pytest.raises(Forbidden, match="needs the maintainer role"):
            await services.deletions.delete_repository(who, "lab/bwa")
    with pytest.raises(NotFound):
        await services.deletions.delete_image(people.outsider, "lab/bwa")

    assert [v.version for v in (await services.catalog.get(people.owner, "lab/bwa")).versions] == ["v1"]
    assert (await services.manifests.get("lab/bwa", "v1")).digest
    assert not [a for a in await actions(services) if a[0].endswith(".delete")]


async def test_a_deleted_name_is_free_again_and_its_past_stays_in_the_history(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "docker.io/library/alpine:3.20")
    with pytest.raises(PushRefused):  # the name-clash rule
        await push(services, "lab/alpine", "3.20")

    await services.deletions.delete_image(people.owner, "lab/alpine")
    await push(services, "lab/alpine", "3.20")

    version = await services.catalog.version(people.reader, "lab/alpine", "3.20")
    assert version.source == "internal"
    kinds = [e.kind for e in await services.deletions.events(people.reader, "lab/alpine")]
    assert kinds == ["pushed", "created", "image.deleted", "version.added", "created"]
    # The name lives again in a public repository: others see this life, never the past one.
    await services.identity.repositories.set_visibility(people.owner, "lab/alpine", "public")
    seen = [e.kind for e in await services.deletions.events(people.outsider, "lab/alpine")]
    assert seen == ["modified", "pushed", "created"]  # modified: made public


async def test_deleting_one_version_is_audited_and_in_the_history(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")

    await services.deletions.delete_version(people.admin, "lab/bwa", "v1")

    event = (await services.deletions.events(people.reader, "lab/bwa"))[0]
    assert (event.kind, event.version, event.actor) == ("version.deleted", "v1", "ada")
    assert ("version.delete", "lab/bwa:v1") in await actions(services)


async def test_a_workspace_delete_is_refused_with_what_it_holds_then_forced(
    services: Services, people: People
) -> None:
    await push(services, "lab/bwa", "v1")
    await services.catalog.register_external(people.developer, WORKSPACE, "docker.io/library/alpine:3.20")

    for who in (people.maintainer, people.developer):
        with pytest.raises(Forbidden):
            await services.identity.workspaces.delete(who, WORKSPACE, force=True)
    with pytest.raises(StillHolds) as refused:
        await services.identity.workspaces.delete(people.owner, WORKSPACE)
    assert refused.value.holdings == ["image lab/alpine", "image lab/bwa"]
    assert "lab/bwa" in await repository_names(services)

    held = await services.identity.workspaces.delete(people.admin, WORKSPACE, force=True)

    assert held == ["image lab/alpine", "image lab/bwa"]
    assert "lab/bwa" not in await repository_names(services)
    with pytest.raises(ManifestUnknown):
        await services.manifests.get("lab/bwa", "v1")
    entry = (await audit.query(services.db, action="workspace.delete"))[0]
    assert entry.detail == {"forced": True, "deleted": held}
    assert entry.actor_name == "ada"


async def test_a_build_definition_delete_is_audited_in_the_image_history_and_held_by_its_workspace(
    services: Services, people: People
) -> None:
    assert services.builds is not None
    definitions = services.builds.definitions
    await definitions.create(
        people.developer, WORKSPACE, "tools", DefinitionInput(dockerfile="FROM scratch\n")
    )
    await push(services, "lab/tools", "v1")
    with pytest.raises(StillHolds) as refused:
        await services.identity.workspaces.delete(people.owner, WORKSPACE)
    assert refused.value.holdings == ["image lab/tools", "build definition lab/tools"]
    with pytest.raises(Forbidden):
        await definitions.delete(people.developer, "lab/tools")

    await definitions.delete(people.maintainer, "lab/tools", "192.0.2.9")

    assert ("build_definition.delete", "lab/tools") in await actions(services)
    event = (await services.deletions.events(people.reader, "lab/tools"))[0]
    assert (event.kind, event.actor) == ("build_definition.deleted", "mia")


async def test_a_token_without_the_delete_scope_deletes_nothing(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")
    api_only = replace(people.owner, scopes=frozenset({"api", "pull", "push"}), token_id=1)

    for attempt in (
        services.deletions.delete_image(api_only, "lab/bwa"),
        services.deletions.delete_version(api_only, "lab/bwa", "v1"),
        services.deletions.delete_repository(api_only, "lab/bwa"),
        services.identity.workspaces.delete(api_only, WORKSPACE, force=True),
    ):
        with pytest.raises(Forbidden, match="the 'delete' scope"):
            await attempt

    assert (await services.manifests.get("lab/bwa", "v1")).digest


async def test_a_repository_without_a_catalog_image_is_deleted_by_a_maintainer(
    services: Services, people: People
) -> None:
    manifest = image()
    await push_manifest(services, "lab/artifacts", manifest)  # untagged: no catalog image
    with pytest.raises(NotFound):
        await services.catalog.get(people.owner, "lab/artifacts")

    await services.deletions.delete_repository(people.maintainer, "lab/artifacts")

    assert "lab/artifacts" not in await repository_names(services)
    with pytest.raises(ManifestUnknown):
        await services.manifests.get("lab/artifacts", manifest.digest)
    assert ("repository.delete", "lab/artifacts") in await actions(services)
    with pytest.raises(NotFound):
        await services.deletions.delete_repository(people.maintainer, "lab/artifacts")


async def test_a_version_delete_keeps_the_signature_tags_an_immutability_rule_protects(
    services: Services, people: People
) -> None:
    version = await push(services, "lab/bwa", "v1")
    await push(services, "lab/bwa", "v2")
    hex_ = version.digest.removeprefix("sha256:")
    signature, attestation = image("s390x"), image("ppc64le")
    await push(services, "lab/bwa", f"sha256-{hex_}.sig", signature)
    await push(services, "lab/bwa", f"sha256-{hex_}.att", attestation)
    await services.immutability.set(people.owner, WORKSPACE, TagRules(["sha256-*.sig"]))
    await services.deletions.delete_version(people.maintainer, "lab/bwa", "v1")
    assert await services.manifests.tags("lab/bwa", None, None) == [f"sha256-{hex_}.sig", "v2"]
    assert (await services.manifests.get("lab/bwa", f"sha256-{hex_}.sig")).digest == signature.digest
    with pytest.raises(ManifestUnknown):
        await services.manifests.get("lab/bwa", attestation.digest)
