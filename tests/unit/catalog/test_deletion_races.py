"""Deletions racing a push that links a blob into an existing repository, on a real metadata
database (SQLite and PostgreSQL). The push holds its repository's share lock and links a blob
while the deletion waits: the deletion must give that blob back to the quota too (it reads the
links only once it holds the repository), and a forced workspace deletion must wait for the
push instead of deadlocking with it. On PostgreSQL each test waits until the deletion is
blocked on the push's lock; SQLite serialises writers, so the deletion starts after the push
committed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.tables import repositories, workspaces
from dockyard.oci.digest import Digest
from dockyard.registry import repositories as repos
from dockyard.registry.tables import workspace_blobs, workspace_quotas
from tests.unit.catalog.factories import WORKSPACE, People, push
from tests.unit.catalog.test_workspace_races import blocked_on_a_lock
from tests.unit.registry.factories import push_blob

REPO = f"{WORKSPACE}/app"


async def workspace_id(services: Services) -> int:
    async with services.db.read() as conn:
        found = await conn.execute(select(workspaces.c.id).where(workspaces.c.name == WORKSPACE))
        return int(found.scalar_one())


async def a_blob_elsewhere(services: Services, data: bytes) -> Digest:
    """A blob stored in another workspace, which a push into ``lab`` then only links."""
    return Digest.parse(str(await push_blob(services, "other/x", data)))


async def linking_while(services: Services, data: bytes, deletion: Coroutine[Any, Any, object]) -> None:
    """A push into REPO that links a blob while ``deletion`` waits for its repository lock."""
    digest = await a_blob_elsewhere(services, data)
    async with services.db.write() as conn:
        repo_id = await repos.ensure_id(services.db, conn, REPO)  # the push's share lock
        start = asyncio.create_task(deletion)
        await blocked_on_a_lock(services)
        await services.blobs._link(conn, repo_id, digest, len(data))
    await start


async def counted_in(services: Services, lab: int) -> tuple[list[str], int]:
    """The blobs the workspace is charged for, and its used bytes."""
    async with services.db.read() as conn:
        counted = await conn.execute(
            select(workspace_blobs.c.digest).where(workspace_blobs.c.workspace_id == lab)
        )
        used = await conn.execute(
            select(workspace_quotas.c.used_bytes).where(workspace_quotas.c.workspace_id == lab)
        )
        return list(counted.scalars()), int(used.scalar() or 0)


async def test_deleting_an_image_gives_back_a_blob_another_workspace_stores_too(
    services: Services, people: People
) -> None:
    lab = await workspace_id(services)
    data = b"a blob two workspaces store"
    await a_blob_elsewhere(services, data)
    await push_blob(services, REPO, data)
    await push(services, REPO, "v1")
    await services.deletions.delete_image(people.maintainer, REPO)
    assert await counted_in(services, lab) == ([], 0)


async def test_deleting_an_image_while_a_push_links_a_blob_gives_that_blob_back_too(
    services: Services, people: People
) -> None:
    await push(services, REPO, "v1")
    lab = await workspace_id(services)
    data = b"a blob linked while the image is deleted"
    await linking_while(services, data, services.deletions.delete_image(people.maintainer, REPO))
    assert await counted_in(services, lab) == ([], 0)


async def test_deleting_a_bare_repository_while_a_push_links_a_blob_gives_that_blob_back_too(
    services: Services, people: People
) -> None:
    lab = await workspace_id(services)
    await push_blob(services, REPO, b"the repository's first blob, no image")
    data = b"a blob linked while the repository is deleted"
    await linking_while(services, data, services.deletions.delete_repository(people.maintainer, REPO))
    assert await counted_in(services, lab) == ([], 0)


async def test_a_forced_workspace_deletion_waits_for_a_push_into_an_existing_repository(
    services: Services, people: People
) -> None:
    await push(services, REPO, "v1")
    data = b"a new layer pushed as the workspace goes"
    deleting = services.identity.workspaces.delete(people.owner, WORKSPACE, force=True)
    await linking_while(services, data, deleting)
    async with services.db.read() as conn:
        left = (await conn.execute(select(repositories.c.name).where(repositories.c.name == REPO))).all()
        gone = (await conn.execute(select(workspaces.c.id).where(workspaces.c.name == WORKSPACE))).all()
    assert (left, gone) == ([], [])
