from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import select, update

from dockyard.app.services import Services
from dockyard.oci.digest import Digest
from dockyard.registry import tables
from dockyard.registry.errors import BlobUnknown, NameUnknown
from dockyard.registry.paths import blob_path
from dockyard.storage.filesystem import FilesystemDriver
from tests.unit.registry.factories import open_services, push_blob

SOURCE, TARGET = "team/source", "team/target"


async def blob_unknown(services: Services, repository: str, digest: Digest) -> None:
    with pytest.raises(BlobUnknown):
        await services.blobs.size_in(repository, digest)


async def test_size_in_needs_a_link(services: Services) -> None:
    data = os.urandom(100)
    digest = await push_blob(services, SOURCE, data)
    assert await services.blobs.size_in(SOURCE, digest) == 100
    await blob_unknown(services, TARGET, digest)  # the bytes exist, but TARGET has no link
    await blob_unknown(services, "no/such/repo", digest)
    await blob_unknown(services, SOURCE, Digest.of(b"never pushed"))


async def test_locate_on_the_memory_driver(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"bytes")
    location = await services.blobs.locate(SOURCE, digest)
    assert (location.digest, location.size, location.path) == (digest, 5, blob_path(digest))
    assert location.redirect is None
    assert location.local is None


async def test_locate_on_the_filesystem_driver(database_url: str, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    async with open_services(database_url, tmp_path, FilesystemDriver(root)) as services:
        data = os.urandom(4321)
        digest = await push_blob(services, SOURCE, data)
        location = await services.blobs.locate(SOURCE, digest, "HEAD")
        assert location.local is not None
        assert location.local.size == len(data)
        assert Path(location.local.path) == root / blob_path(digest)
        assert await asyncio.to_thread(Path(location.local.path).read_bytes) == data


async def test_locate_bytes_missing_from_storage_is_blob_unknown(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"soon lost")
    await services.storage.delete(blob_path(digest))
    with pytest.raises(BlobUnknown):
        await services.blobs.locate(SOURCE, digest)


async def test_mount_from_a_repository_that_has_the_blob(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"shared layer")
    assert await services.blobs.mount(TARGET, SOURCE, digest) == len(b"shared layer")
    assert await services.blobs.size_in(TARGET, digest) == len(b"shared layer")
    assert await services.blobs.mount(TARGET, SOURCE, digest) == len(b"shared layer"), "idempotent"


async def test_mount_from_a_repository_that_lacks_the_blob(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"only in source")
    await push_blob(services, "team/other", b"something else")
    assert await services.blobs.mount(TARGET, "team/other", digest) is None
    assert await services.blobs.mount(TARGET, "no/such/repo", digest) is None
    assert await services.blobs.mount(TARGET, SOURCE, Digest.of(b"never pushed")) is None
    await blob_unknown(services, TARGET, digest)


async def test_mount_of_a_blob_being_collected_is_refused(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"doomed")
    async with services.db.write() as conn:
        await conn.execute(update(tables.blobs).values(state="deleting"))
    assert await services.blobs.mount(TARGET, SOURCE, digest) is None
    await blob_unknown(services, TARGET, digest)


async def test_mount_refreshes_the_blob(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"layer")
    async with services.db.write() as conn:
        await conn.execute(update(tables.blobs).values(touched_at=0.0))
    await services.blobs.mount(TARGET, SOURCE, digest)
    async with services.db.read() as conn:
        touched = (await conn.execute(select(tables.blobs.c.touched_at))).scalar_one()
    assert touched > 0.0, "GC must not take a blob that was just mounted"


async def test_unlink_removes_only_the_link(services: Services) -> None:
    digest = await push_blob(services, SOURCE, b"layer")
    await services.blobs.mount(TARGET, SOURCE, digest)
    await services.blobs.unlink(SOURCE, digest)
    await blob_unknown(services, SOURCE, digest)
    assert await services.blobs.size_in(TARGET, digest) == 5
    assert await services.storage.get_content(blob_path(digest)) == b"layer"
    with pytest.raises(BlobUnknown):
        await services.blobs.unlink(SOURCE, digest)


async def test_unlink_in_an_unknown_repository(services: Services) -> None:
    with pytest.raises(NameUnknown):
        await services.blobs.unlink("no/such/repo", Digest.of(b"x"))


async def test_claim_creates_and_refreshes_the_row(services: Services) -> None:
    digest = Digest.of(b"claimed")
    await services.blobs.claim(digest, 7)
    async with services.db.write() as conn:
        await conn.execute(update(tables.blobs).values(touched_at=1.0))
    await services.blobs.claim(digest, 7)
    async with services.db.read() as conn:
        rows = (await conn.execute(select(tables.blobs.c.state, tables.blobs.c.touched_at))).all()
    assert len(rows) == 1
    assert rows[0][0] == "live"
    assert rows[0][1] > 1.0
