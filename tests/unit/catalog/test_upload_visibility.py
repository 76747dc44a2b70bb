"""An archive upload that asks for a visibility: the new repository has it from the first blob
the upload links (never the workspace's default in between, nor for good when the process dies
mid-push), and an existing image's other visibility is refused before anything is pushed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.facts import allowed
from dockyard.auth.policy import PULL
from dockyard.auth.tables import repositories
from dockyard.catalog.service import VersionSettings
from dockyard.catalog.sharing import image_visibility
from dockyard.errors import Conflict
from dockyard.oci.digest import Digest
from dockyard.registry.tables import tags
from dockyard.transfer.imports.versions import VersionRequest
from tests.support.archives import SavedImage, docker_save, layer
from tests.unit.catalog.factories import WORKSPACE, People

REPO = f"{WORKSPACE}/tool"


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def imported(services: Services, people: People, content: bytes) -> str:
    """A finished upload by the developer of one image tagged ``tool:1``; its id."""
    status = await services.archives.start(people.developer, WORKSPACE)
    data = docker_save([SavedImage([layer({"bin/tool": content})], ["tool:1"])])
    await services.archives.import_body(people.developer, status.id, body(data))
    return status.id


async def a_public_default(services: Services, people: People) -> None:
    await services.identity.workspaces.update(people.owner, WORKSPACE, default_visibility="public")


async def test_a_private_upload_into_a_public_workspace_is_private_from_its_first_blob(
    services: Services, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    await a_public_default(services, people)
    archive_id = await imported(services, people, b"private from the start")
    versions = services.archive_versions
    adopt = versions.blobs.adopt
    seen: list[tuple[str, bool]] = []

    async def watched(repository: str, digest: Digest, size: int, scratch_path: str | None) -> bool:
        """Each blob as it is linked: how visible the repository is at that moment."""
        linked = await adopt(repository, digest, size, scratch_path)
        async with services.db.read() as conn:
            visibility = await image_visibility(conn, repository)
        anonymous = await allowed(services.db, people.anonymous, repository)
        seen.append((visibility, PULL in anonymous.actions))
        return linked

    monkeypatch.setattr(versions.blobs, "adopt", watched)
    request = VersionRequest(version="1", settings=VersionSettings(visibility="private"))
    await versions.create(people.developer, archive_id, request)
    assert seen, "no blob was linked"
    assert set(seen) == {("private", False)}, seen
    created = [e for e in await services.catalog.events(people.developer, REPO) if e.kind == "created"]
    assert [e.detail["visibility"] for e in created] == ["private"]


async def test_an_other_visibility_for_an_existing_image_is_refused_before_anything_is_pushed(
    services: Services, people: People
) -> None:
    await a_public_default(services, people)
    first = await imported(services, people, b"the public first version")
    await services.archive_versions.create(people.developer, first, VersionRequest(version="1"))
    second = await imported(services, people, b"a second version asking to be private")
    request = VersionRequest(version="2", settings=VersionSettings(visibility="private"))
    with pytest.raises(Conflict, match="setting of the whole image"):
        await services.archive_versions.create(people.developer, second, request)
    async with services.db.read() as conn:
        tagged = (
            await conn.execute(
                select(tags.c.name)
                .join(repositories, repositories.c.id == tags.c.repository_id)
                .where(repositories.c.name == REPO)
                .order_by(tags.c.name)
            )
        ).scalars()
        assert list(tagged) == ["1"]
        assert await image_visibility(conn, REPO) == "public"
