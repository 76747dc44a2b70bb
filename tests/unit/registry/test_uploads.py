from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dockyard.app.services import Services
from dockyard.oci.digest import Digest
from dockyard.registry import tables
from dockyard.registry.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestMismatch,
    SizeMismatch,
    UploadRangeInvalid,
)
from dockyard.registry.http.errors import translate
from dockyard.registry.paths import blob_path, upload_dir, upload_path
from dockyard.registry.uploads import BUFFER
from dockyard.storage.base import PathNotFound
from dockyard.storage.filesystem import FilesystemDriver
from tests.unit.registry.factories import another_worker, open_services, stream

REPO = "team/app"


async def stored(services: Services, digest: Digest) -> bytes:
    return await services.storage.get_content(blob_path(digest))


async def blob_rows(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(tables.blobs))).scalar_one())


async def test_monolithic_upload(services: Services) -> None:
    data = os.urandom(3000)
    digest = await services.uploads.monolithic(REPO, Digest.of(data), stream(data[:1000], data[1000:]), None)
    assert digest == Digest.of(data)
    assert await stored(services, digest) == data
    assert await services.blobs.size_in(REPO, digest) == len(data)
    with pytest.raises(PathNotFound):  # the scratch upload is gone
        await services.storage.list("uploads")


async def test_empty_blob(services: Services) -> None:
    digest = await services.uploads.monolithic(REPO, Digest.of(b""), stream(), 0)
    assert await services.blobs.size_in(REPO, digest) == 0
    assert await stored(services, digest) == b""


async def test_chunks_hashed_across_workers(services: Services) -> None:
    """Chunks arrive at different processes: each one must catch up on what the other
    received before hashing on, or the final digest would be wrong."""
    first, second, third = os.urandom(BUFFER + 1234), os.urandom(5000), os.urandom(BUFFER // 2)
    worker_a, worker_b = services.uploads, another_worker(services)

    session = await worker_a.start(REPO)
    status = await worker_a.append(REPO, session.id, stream(first), 0, len(first))
    assert status.offset == len(first)
    status = await worker_b.append(REPO, session.id, stream(second), status.offset, len(second))
    assert status.offset == len(first) + len(second)
    # Worker A still caches a hash state at len(first): it must notice that it is stale.
    whole = first + second + third
    digest = await worker_a.finish(REPO, session.id, Digest.of(whole), stream(third), len(third))

    assert digest == Digest.of(whole)
    assert await stored(services, digest) == whole
    assert await services.blobs.size_in(REPO, digest) == len(whole)


async def test_finish_with_no_body_at_another_worker(services: Services) -> None:
    data = os.urandom(10_000)
    session = await services.uploads.start(REPO)
    await services.uploads.append(REPO, session.id, stream(data[:4000]), 0, 4000)
    await services.uploads.append(REPO, session.id, stream(data[4000:]), 4000, None)
    digest = await another_worker(services).finish(REPO, session.id, Digest.of(data), stream(), 0)
    assert await stored(services, digest) == data


async def test_wrong_digest_discards_the_upload(services: Services) -> None:
    data = b"the real content"
    session = await services.uploads.start(REPO)
    await services.uploads.append(REPO, session.id, stream(data), 0, len(data))
    claimed = Digest.of(b"something else")
    with pytest.raises(DigestMismatch):
        await services.uploads.finish(REPO, session.id, claimed, stream(), 0)

    with pytest.raises(BlobUploadUnknown):
        await services.uploads.status(REPO, session.id)
    with pytest.raises(PathNotFound):
        await services.storage.stat(upload_dir(session.id))
    for digest in (claimed, Digest.of(data)):
        with pytest.raises(BlobUnknown):
            await services.blobs.size_in(REPO, digest)
    assert await blob_rows(services) == 0


async def test_out_of_order_chunk_is_range_invalid(services: Services) -> None:
    session = await services.uploads.start(REPO)
    await services.uploads.append(REPO, session.id, stream(b"0123456789"), 0, 10)
    for start in (0, 5, 11, 20):
        with pytest.raises(UploadRangeInvalid) as info:
            await services.uploads.append(REPO, session.id, stream(b"abc"), start, 3)
        assert (info.value.repository, info.value.upload_id, info.value.offset) == (REPO, session.id, 10)
        answer = translate(info.value)
        assert answer is not None
        assert answer.code.status == 416
        assert answer.headers["Range"] == "0-9"
        assert answer.headers["Location"] == f"/v2/{REPO}/blobs/uploads/{session.id}"
    assert (await services.uploads.status(REPO, session.id)).offset == 10, "rejected chunks wrote nothing"
    await services.uploads.append(REPO, session.id, stream(b"abc"), 10, 3)
    digest = await services.uploads.finish(REPO, session.id, Digest.of(b"0123456789abc"), stream(), None)
    assert await stored(services, digest) == b"0123456789abc"


async def test_first_chunk_must_start_at_zero(services: Services) -> None:
    session = await services.uploads.start(REPO)
    with pytest.raises(UploadRangeInvalid):
        await services.uploads.append(REPO, session.id, stream(b"abc"), 1, 3)


async def test_resume_after_a_server_restart(database_url: str, tmp_path: Path) -> None:
    data = os.urandom(20_000)
    root = tmp_path / "storage"
    async with open_services(database_url, tmp_path, FilesystemDriver(root)) as before:
        session = await before.uploads.start(REPO)
        await before.uploads.append(REPO, session.id, stream(data[:7000]), 0, 7000)

    async with open_services(database_url, tmp_path, FilesystemDriver(root)) as after:
        status = await after.uploads.status(REPO, session.id)
        assert status.offset == 7000
        await after.uploads.append(REPO, session.id, stream(data[7000:15000]), 7000, 8000)
        digest = await after.uploads.finish(REPO, session.id, Digest.of(data), stream(data[15000:]), 5000)
        assert await after.blobs.size_in(REPO, digest) == len(data)
        assert (root / blob_path(digest)).read_bytes() == data
        assert not (root / upload_path(session.id)).exists()


async def test_length_mismatch_is_size_invalid(services: Services) -> None:
    session = await services.uploads.start(REPO)
    with pytest.raises(SizeMismatch):
        await services.uploads.append(REPO, session.id, stream(b"abc"), 0, 5)
    other = await services.uploads.start(REPO)
    with pytest.raises(SizeMismatch):
        await services.uploads.append(REPO, other.id, stream(b"abc", b"def"), 0, 4)


async def test_sha512_digest(services: Services) -> None:
    data = os.urandom(5000)
    digest = Digest.of(data, "sha512")
    assert await services.uploads.monolithic(REPO, digest, stream(data), len(data)) == digest
    assert await stored(services, digest) == data
    assert blob_path(digest).startswith("blobs/sha512/")


async def test_cancel(services: Services) -> None:
    session = await services.uploads.start(REPO)
    await services.uploads.append(REPO, session.id, stream(b"partial"), 0, 7)
    await services.uploads.cancel(REPO, session.id)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.status(REPO, session.id)
    with pytest.raises(PathNotFound):
        await services.storage.stat(upload_dir(session.id))


@pytest.mark.parametrize("upload_id", ["not-a-uuid", str(uuid.uuid4()), "../../etc"])
async def test_unknown_upload(services: Services, upload_id: str) -> None:
    await services.uploads.start(REPO)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.status(REPO, upload_id)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.append(REPO, upload_id, stream(b"x"), None, None)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.cancel(REPO, upload_id)


async def test_an_upload_belongs_to_its_repository(services: Services) -> None:
    session = await services.uploads.start(REPO)
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.append("other/repo", session.id, stream(b"x"), 0, 1)
    assert (await services.uploads.status(REPO, session.id)).offset == 0


async def test_same_bytes_in_two_repositories_are_stored_once(services: Services) -> None:
    data = os.urandom(2048)
    for repo in ("one/repo", "two/repo"):
        await services.uploads.monolithic(repo, Digest.of(data), stream(data), len(data))
        assert await services.blobs.size_in(repo, Digest.of(data)) == len(data)
    assert await blob_rows(services) == 1


async def test_purge_stale_sessions(services: Services) -> None:
    old = await services.uploads.start(REPO)
    await services.uploads.append(REPO, old.id, stream(b"abc"), 0, 3)
    cutoff = time.time()
    fresh = await services.uploads.start(REPO)
    assert await services.uploads.purge_stale(cutoff) == 1
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.status(REPO, old.id)
    with pytest.raises(PathNotFound):
        await services.storage.stat(upload_path(old.id))
    assert (await services.uploads.status(REPO, fresh.id)).offset == 0


async def test_a_second_writer_is_refused_while_one_appends(services: Services) -> None:
    """Two requests appending to one session at once would interleave their bytes; the
    second one is told to resume later (416) and the stored blob is exactly the first's."""
    first, intruder = os.urandom(BUFFER + 100), os.urandom(BUFFER)
    status = await services.uploads.start(REPO)
    halfway, release = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield first[:1000]
        halfway.set()
        await release.wait()
        yield first[1000:]

    appending = asyncio.create_task(services.uploads.append(REPO, status.id, slow_body()))
    await halfway.wait()
    with pytest.raises(UploadRangeInvalid) as refused:
        await another_worker(services).append(REPO, status.id, stream(intruder))
    answer = translate(refused.value)
    assert answer is not None
    assert "Range" in answer.headers
    release.set()
    assert (await appending).offset == len(first)

    digest = await services.uploads.finish(REPO, status.id, Digest.of(first), stream(), None)
    assert await stored(services, digest) == first
