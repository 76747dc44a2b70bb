from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, update

from dockyard.app.services import Services
from dockyard.db.engine import Connection, Database
from dockyard.oci.digest import Digest
from dockyard.registry import blobs as registry_blobs
from dockyard.registry import tables
from dockyard.registry.errors import BlobUnknown, BlobUploadUnknown, ManifestUnknown
from dockyard.registry.gc import GarbageCollector, GcReport
from dockyard.registry.paths import blob_path, upload_dir
from dockyard.storage.base import PathNotFound
from dockyard.storage.filesystem import FilesystemDriver
from tests.support.oci import Manifest, artifact, image_config, oci_index, oci_manifest, random_blob
from tests.support.spies import AsyncioSpy
from tests.unit.registry.factories import GRACE, age, open_services, push_blob, push_manifest, stream

REPO = "team/app"
OLD = 2 * GRACE


async def manifest_exists(services: Services, digest: str, repository: str = REPO) -> bool:
    try:
        await services.manifests.get(repository, digest)
    except ManifestUnknown:
        return False
    return True


async def bytes_exist(services: Services, digest: str) -> bool:
    try:
        await services.storage.stat(blob_path(Digest(digest)))
    except PathNotFound:
        return False
    return True


async def blob_state(services: Services, digest: str) -> str | None:
    async with services.db.read() as conn:
        stmt = select(tables.blobs.c.state).where(tables.blobs.c.digest == digest)
        row = (await conn.execute(stmt)).first()
    return None if row is None else str(row[0])


def blob_digests(manifest: Manifest) -> set[str]:
    return {blob.digest for blob in manifest.blobs}


async def test_old_untagged_manifest_and_its_blobs_are_collected(database_url: str, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    async with open_services(database_url, tmp_path, FilesystemDriver(root)) as services:
        shared = random_blob(256)
        kept = oci_manifest(image_config(), [shared])
        dropped = oci_manifest(image_config(), [shared, random_blob(300)])
        await push_manifest(services, REPO, kept, "stable")
        await push_manifest(services, REPO, dropped)  # by digest only: untagged
        await age(services.db, OLD)

        report = await services.gc.run()

        assert report.manifests == [f"{REPO}@{dropped.digest}"]
        unique = blob_digests(dropped) - blob_digests(kept)
        assert set(report.blobs) == unique
        assert report.bytes_freed == sum(b.size for b in dropped.blobs if b.digest in unique)
        assert not await manifest_exists(services, dropped.digest)
        for digest in unique:
            assert not (root / blob_path(Digest(digest))).exists(), "the bytes are gone from disk"
            assert await blob_state(services, digest) is None
            with pytest.raises(BlobUnknown):
                await services.blobs.size_in(REPO, Digest(digest))
        # The tagged image is untouched, including the layer it shares with the dropped one.
        assert (await services.manifests.get(REPO, "stable")).content == kept.body
        for blob in kept.blobs:
            assert (root / blob_path(Digest(blob.digest))).read_bytes() == blob.data
            assert await services.blobs.size_in(REPO, Digest(blob.digest)) == blob.size


async def test_tagged_images_and_index_children_survive(services: Services) -> None:
    image = oci_manifest()
    index = oci_index([oci_manifest(), oci_manifest()])
    await push_manifest(services, REPO, image, "v1")
    await push_manifest(services, REPO, index, "multi")
    await age(services.db, OLD)

    report = await services.gc.run()

    assert (report.manifests, report.links, report.blobs) == ([], [], [])
    for manifest in (image, index, *index.children):
        assert await manifest_exists(services, manifest.digest)
    for manifest in (image, *index.children):
        for blob in manifest.blobs:
            assert await bytes_exist(services, blob.digest)


async def test_untagged_index_takes_its_children_along(services: Services) -> None:
    index = oci_index([oci_manifest(), oci_manifest()])
    await push_manifest(services, REPO, index)
    await age(services.db, OLD)
    report = await services.gc.run()
    assert sorted(report.manifests) == sorted(f"{REPO}@{m.digest}" for m in (index, *index.children))
    for child in index.children:
        for blob in child.blobs:
            assert not await bytes_exist(services, blob.digest)


async def test_referrers_of_a_live_manifest_survive(services: Services) -> None:
    live_subject, dead_subject = oci_manifest(), oci_manifest()
    signature = artifact(live_subject, "application/vnd.example.signature")
    orphan_sbom = artifact(dead_subject, "application/vnd.example.sbom")
    await push_manifest(services, REPO, live_subject, "v1")
    await push_manifest(services, REPO, dead_subject)
    await push_manifest(services, REPO, signature)
    await push_manifest(services, REPO, orphan_sbom)
    await age(services.db, OLD)

    report = await services.gc.run()

    dead = [f"{REPO}@{dead_subject.digest}", f"{REPO}@{orphan_sbom.digest}"]
    assert sorted(report.manifests) == sorted(dead)
    assert await manifest_exists(services, signature.digest)
    referrers = await services.manifests.referrers(REPO, Digest(live_subject.digest), None)
    assert [d["digest"] for d in referrers] == [signature.digest]
    for blob in signature.blobs:
        assert await bytes_exist(services, blob.digest)


async def test_grace_period_protects_young_content(services: Services) -> None:
    old_blob = await push_blob(services, REPO, os.urandom(100))
    old_image = oci_manifest()
    await push_manifest(services, REPO, old_image)
    await age(services.db, OLD)
    young_blob = await push_blob(services, REPO, os.urandom(100))  # e.g. a layer of a push in progress
    young_image = oci_manifest()
    await push_manifest(services, REPO, young_image)

    report = await services.gc.run()

    assert report.manifests == [f"{REPO}@{old_image.digest}"]
    assert old_blob in report.blobs
    assert not await bytes_exist(services, old_blob)
    assert young_blob not in report.blobs
    assert await bytes_exist(services, young_blob)
    assert await services.blobs.size_in(REPO, young_blob) == 100
    assert await manifest_exists(services, young_image.digest)


async def test_an_unlinked_blob_is_collected_once_its_last_link_goes(services: Services) -> None:
    digest = await push_blob(services, REPO, b"layer")
    await services.blobs.mount("team/other", REPO, digest)
    await services.blobs.unlink(REPO, digest)
    await age(services.db, OLD)
    report = await services.gc.run()
    assert report.links == [f"team/other@{digest}"], "an unreferenced link is old enough to go"
    assert report.blobs == [digest]
    assert not await bytes_exist(services, digest)


async def test_dry_run_deletes_nothing_and_reports_what_a_run_deletes(services: Services) -> None:
    keep, drop = oci_manifest(), oci_manifest()
    await push_manifest(services, REPO, keep, "v1")
    await push_manifest(services, REPO, drop)
    loose = await push_blob(services, "team/other", os.urandom(64))
    await services.blobs.unlink("team/other", loose)
    await age(services.db, OLD)

    dry = await services.gc.run(dry_run=True)

    assert dry.dry_run
    assert dry.manifests == [f"{REPO}@{drop.digest}"]
    assert set(dry.blobs) == blob_digests(drop) | {loose}
    assert await manifest_exists(services, drop.digest)
    for digest in set(dry.blobs):
        assert await bytes_exist(services, digest)
        assert await blob_state(services, digest) == "live", "the dry run's marks were rolled back"
    assert await services.blobs.size_in(REPO, Digest(next(iter(drop.blobs)).digest)) > 0

    real = await services.gc.run()

    assert not real.dry_run
    assert sorted(real.manifests) == sorted(dry.manifests)
    assert sorted(real.links) == sorted(dry.links)
    assert sorted(real.blobs) == sorted(dry.blobs)
    assert real.bytes_freed == dry.bytes_freed
    for digest in real.blobs:
        assert not await bytes_exist(services, digest)


async def test_a_second_run_finds_nothing(services: Services) -> None:
    await push_manifest(services, REPO, oci_manifest())
    await age(services.db, OLD)
    first = await services.gc.run()
    assert first.manifests
    second = await services.gc.run()
    assert (second.manifests, second.links, second.blobs, second.bytes_freed) == ([], [], [], 0)


async def test_upload_waits_for_a_blob_being_deleted_then_succeeds(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC marked the row 'deleting' and is removing the bytes; an upload of the same bytes
    must wait for it to finish, then store them afresh (never link to bytes about to vanish)."""
    data = os.urandom(4096)
    digest = await push_blob(services, "team/old", data)
    await services.blobs.unlink("team/old", digest)  # GC only ever marks blobs without links
    async with services.db.write() as conn:  # what GC does first (the only blob row here)
        await conn.execute(update(tables.blobs).values(state="deleting"))

    backoffs = AsyncioSpy("sleep")  # the claim sleeps only when it found the row not live
    monkeypatch.setattr(registry_blobs, "asyncio", backoffs)
    upload = asyncio.create_task(services.uploads.monolithic(REPO, digest, stream(data), len(data)))
    await backoffs.reached(3, unless=upload)  # it asked again and again, and was told to wait each time
    assert not upload.done(), "the upload must wait while the blob is being deleted"

    async def finish_deletion() -> GcReport:
        # What a GC that died after marking the row does on its next run.
        return await services.gc.run()

    report = await asyncio.create_task(finish_deletion())
    assert digest in report.blobs
    assert await asyncio.wait_for(upload, timeout=10) == digest

    assert await blob_state(services, digest) == "live"
    assert await services.storage.get_content(blob_path(digest)) == data
    assert await services.blobs.size_in(REPO, digest) == len(data)


async def test_stale_upload_sessions_are_purged(services: Services) -> None:
    stale = await services.uploads.start(REPO)
    await services.uploads.append(REPO, stale.id, stream(b"abc"), 0, 3)
    async with services.db.write() as conn:
        await conn.execute(update(tables.uploads).values(updated_at=time.time() - 8 * 24 * 3600))
    active = await services.uploads.start(REPO)

    report = await services.gc.run()

    assert report.uploads == 1
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.status(REPO, stale.id)
    assert (await services.uploads.status(REPO, active.id)).offset == 0


async def test_orphan_upload_folders_are_removed(database_url: str, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    async with open_services(database_url, tmp_path, FilesystemDriver(root)) as services:
        session = await services.uploads.start(REPO)
        orphan, young_orphan = str(uuid.uuid4()), str(uuid.uuid4())
        for upload_id in (orphan, young_orphan):
            await services.storage.put_content(f"{upload_dir(upload_id)}/data", b"left by a crash")
        old = time.time() - OLD
        os.utime(root / upload_dir(orphan), (old, old))
        os.utime(root / upload_dir(session.id), (old, old))

        report = await services.gc.run()

        assert report.uploads == 1
        assert not (root / upload_dir(orphan)).exists()
        assert (root / upload_dir(young_orphan)).exists()
        assert (await services.uploads.status(REPO, session.id)).offset == 0, "a live session is kept"


class LetsAPushInBeforeItsFirstWrite(Database):
    """GC's view of the database, with one client request slipped in after GC has decided
    what is dead and before it deletes anything: the window an online GC must handle."""

    def __init__(self, url: str, push: Callable[[], Awaitable[object]]) -> None:
        super().__init__(url)
        self._push: Callable[[], Awaitable[object]] | None = push

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        if self._push is not None:
            push, self._push = self._push, None
            await push()
        async with super().write() as conn:
            yield conn


async def collect_with_a_push_midway(services: Services, push: Callable[[], Awaitable[object]]) -> GcReport:
    """Run GC with ``push`` slipped in between its decisions and its first delete."""
    gc_db = LetsAPushInBeforeItsFirstWrite(services.db.url, push)
    try:
        gc = GarbageCollector(
            gc_db, services.storage, services.uploads, services.generations, GRACE, 7 * 24 * 3600.0
        )
        return await gc.run()
    finally:
        await gc_db.dispose()


async def test_an_index_pushed_during_gc_keeps_its_children(services: Services) -> None:
    """An old untagged manifest is garbage until an index names it. If that index arrives
    between GC's mark and its delete, the delete must notice, or the new index is broken."""
    child = oci_manifest()
    await push_manifest(services, REPO, child)  # by digest, as multi-arch builds push children
    await age(services.db, OLD)
    index = oci_index([child])

    async def push_index() -> None:
        await services.manifests.put(REPO, "multi", index.body, index.media_type, actor=None)

    report = await collect_with_a_push_midway(services, push_index)

    assert (await services.manifests.get(REPO, "multi")).digest == index.digest
    assert await manifest_exists(services, child.digest), f"GC deleted a child of a live index: {report}"
    for blob in child.blobs:
        assert await bytes_exist(services, blob.digest)


async def test_a_subject_tagged_during_gc_keeps_its_referrers(services: Services) -> None:
    """The same window for referrers: once the subject is tagged, its signature is live."""
    subject = oci_manifest()
    signature = artifact(subject, "application/vnd.example.signature")
    await push_manifest(services, REPO, subject)
    await push_manifest(services, REPO, signature)
    await age(services.db, OLD)

    async def tag_subject() -> None:
        await services.manifests.put(REPO, "v1", subject.body, subject.media_type, actor=None)

    report = await collect_with_a_push_midway(services, tag_subject)

    assert (await services.manifests.get(REPO, "v1")).digest == subject.digest
    referrers = await services.manifests.referrers(REPO, Digest(subject.digest), None)
    assert [d["digest"] for d in referrers] == [signature.digest], f"GC deleted a live referrer: {report}"
