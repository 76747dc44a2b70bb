"""What the S3 driver promises beyond the shared contract, against a real Ceph radosgw."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator

import botocore.exceptions
import httpx
import pytest

from dockyard.app.services import configured_storage
from dockyard.settings import Settings
from dockyard.storage.base import PathNotFound, StorageUnavailable
from dockyard.storage.s3 import S3Driver
from tests.support.s3 import s3_config

PART = 5 * 1024 * 1024


@pytest.fixture
async def s3() -> AsyncIterator[S3Driver]:
    driver = S3Driver(s3_config())
    await driver.ensure_bucket()
    yield driver
    answer = await asyncio.to_thread(
        driver.client.list_objects_v2, Bucket=driver.bucket, Prefix=driver.config.prefix
    )
    for item in answer.get("Contents", []):
        await asyncio.to_thread(driver.client.delete_object, Bucket=driver.bucket, Key=item["Key"])


async def _uploads(driver: S3Driver) -> list[tuple[str, str]]:
    """The multipart uploads in progress: (key, upload id)."""
    answer = await asyncio.to_thread(
        driver.client.list_multipart_uploads, Bucket=driver.bucket, Prefix=driver.config.prefix
    )
    return [(upload["Key"], upload["UploadId"]) for upload in answer.get("Uploads", [])]


async def test_nothing_is_visible_at_the_path_until_the_writer_closes(s3: S3Driver) -> None:
    await s3.put_content("blob", b"old")
    writer = await s3.writer("blob")
    await writer.write(b"n" * (2 * PART + 1))  # two parts are already on the server
    assert [key for key, _ in await _uploads(s3)] == [s3.key("blob")]
    assert await s3.get_content("blob") == b"old"
    await writer.commit()
    assert (await s3.stat("blob")).size == 2 * PART + 1
    assert await _uploads(s3) == []


async def test_a_restarted_process_resumes_from_the_last_close(s3: S3Driver) -> None:
    """The object is the checkpoint: a new driver (another process) continues after what was
    closed; the parts a dead writer left unfinished are aborted, not billed forever."""
    first = await s3.writer("uploads/u/data")
    await first.write(b"a" * (PART + 3))
    await first.close()
    dead = await s3.writer("uploads/u/data", append=True)
    await dead.write(b"lost" * PART)  # parts uploaded, then the process dies without close
    [(key, dead_upload)] = await _uploads(s3)
    assert key == s3.key("uploads/u/data")

    restarted = S3Driver(s3.config)
    resumed = await restarted.writer("uploads/u/data", append=True)
    assert resumed.size == PART + 3
    assert dead_upload not in [upload for _, upload in await _uploads(s3)], "the dead upload is aborted"
    await resumed.write(b"b")
    await resumed.commit()
    assert await s3.get_content("uploads/u/data") == b"a" * (PART + 3) + b"b"


async def test_cancel_aborts_the_multipart_upload(s3: S3Driver) -> None:
    writer = await s3.writer("doomed")
    await writer.write(b"x" * (PART + 1))
    await writer.cancel()
    assert await _uploads(s3) == []
    with pytest.raises(PathNotFound):
        await s3.stat("doomed")


async def test_presigned_redirects_serve_the_object(s3: S3Driver) -> None:
    redirecting = S3Driver(dataclasses.replace(s3_config(), prefix=s3.config.prefix, redirect=True))
    await redirecting.put_content("blobs/x", b"served by radosgw")
    url = await redirecting.redirect_url("blobs/x")
    assert url is not None
    assert url.startswith(s3.config.endpoint)
    head = await redirecting.redirect_url("blobs/x", "HEAD")
    assert head is not None
    async with httpx.AsyncClient(timeout=30) as client:  # no credentials: the URL carries them
        answer = await client.get(url)
        assert answer.status_code == 200
        assert answer.content == b"served by radosgw"
        answer = await client.head(head)
        assert answer.status_code == 200
        assert answer.headers["Content-Length"] == str(len(b"served by radosgw"))
        refused = await client.get(url.split("?")[0])
        assert refused.status_code == 403, "without the signature the object is private"
    assert await s3.redirect_url("blobs/x") is None, "streaming is the default"


def test_settings_choose_the_s3_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    config = s3_config()
    monkeypatch.setenv("DOCKYARD_STORAGE_DRIVER", "s3")
    monkeypatch.setenv("DOCKYARD_S3_ENDPOINT", config.endpoint)
    monkeypatch.setenv("DOCKYARD_S3_BUCKET", config.bucket)
    monkeypatch.setenv("DOCKYARD_S3_ACCESS_KEY", config.access_key)
    monkeypatch.setenv("DOCKYARD_S3_SECRET_KEY", config.secret_key)
    monkeypatch.setenv("DOCKYARD_S3_PREFIX", config.prefix)
    driver = configured_storage(Settings())
    assert isinstance(driver, S3Driver)
    assert driver.config.prefix == config.prefix
    assert driver.config.redirect is False

    async def roundtrip() -> bytes:
        await driver.put_content("hello", b"world")
        data = await driver.get_content("hello")
        await driver.delete("hello")
        return data

    assert asyncio.run(roundtrip()) == b"world"


def test_settings_refuse_an_incomplete_s3_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_STORAGE_DRIVER", "s3")
    with pytest.raises(ValueError, match="s3_bucket"):
        Settings()
    monkeypatch.setenv("DOCKYARD_S3_BUCKET", "b")
    monkeypatch.setenv("DOCKYARD_S3_ACCESS_KEY", "k")
    monkeypatch.setenv("DOCKYARD_S3_PREFIX", "no-slash")
    with pytest.raises(ValueError, match="must end with '/'"):
        Settings()


async def test_a_failed_part_aborts_the_upload_and_keeps_the_checkpoint(s3: S3Driver) -> None:
    """S3 refusing one part (throttling, here injected in the client below the HTTP edge) must
    never complete an upload with that part missing: the writer aborts, the object stays what
    it was (the checkpoint a client resumes from) and the error is the storage's (a 503)."""
    await s3.put_content("uploads/f/data", b"c" * (PART + 7))
    real = s3.client.upload_part
    calls = {"n": 0}

    def flaky(**kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
            raise botocore.exceptions.ClientError(error, "UploadPart")
        return real(**kwargs)

    s3.client.upload_part = flaky
    writer = await s3.writer("uploads/f/data", append=True)

    async def fill() -> None:
        for _ in range(6):
            await writer.write(b"n" * PART)

    with pytest.raises(StorageUnavailable):
        await fill()
    with pytest.raises(StorageUnavailable, match="nothing new was stored"):
        await writer.close()
    assert (await s3.stat("uploads/f/data")).size == PART + 7
    assert await s3.get_content("uploads/f/data") == b"c" * (PART + 7)
    assert await _uploads(s3) == []


async def test_a_refusal_by_s3_is_a_storage_error_not_a_crash(s3: S3Driver) -> None:
    wrong = S3Driver(dataclasses.replace(s3_config(), secret_key="not-the-secret"))
    with pytest.raises(StorageUnavailable, match="S3 refused the request"):
        await wrong.get_content("anything")
    with pytest.raises(StorageUnavailable):
        await wrong.put_content("anything", b"x")


async def test_a_reader_left_part_way_or_cancelled_ends_cleanly(s3: S3Driver) -> None:
    """The reader reads one chunk ahead of its caller: a caller that stops after the first
    chunk, or whose task is cancelled while it waits for one, leaves no read running and the
    object readable."""
    data = bytes(range(256)) * (3 * 4 * 1024 * 1024 // 256 + 7)  # a little over three chunks
    await s3.put_content("big", data)
    reader = s3.reader("big")
    assert isinstance(reader, AsyncGenerator)  # what the driver returns: it can be closed early
    first = await anext(reader)
    assert first == data[: len(first)]
    await reader.aclose()

    started = asyncio.Event()

    async def read_all() -> bytes:
        got = bytearray()
        async for chunk in s3.reader("big"):
            got += chunk
            started.set()
        return bytes(got)

    task = asyncio.create_task(read_all())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    whole = b"".join([chunk async for chunk in s3.reader("big", 5, len(data) - 10)])
    assert whole == data[5:-5]


async def test_a_writer_reopened_and_closed_with_nothing_new_leaves_the_object_as_it_is(s3: S3Driver) -> None:
    """An upload's last step reopens its file and commits it before the blob is moved: with
    nothing appended the object is not copied onto itself (the same object, its ETag kept),
    while an append after the reopen still starts from every byte stored before."""
    data = b"x" * (PART + 11)
    first = await s3.writer("uploads/v/data")
    await first.write(data)
    await first.close()
    head = await asyncio.to_thread(s3.client.head_object, Bucket=s3.bucket, Key=s3.key("uploads/v/data"))

    again = await s3.writer("uploads/v/data", append=True)
    assert again.size == len(data)
    await again.commit()
    after = await asyncio.to_thread(s3.client.head_object, Bucket=s3.bucket, Key=s3.key("uploads/v/data"))
    assert after["ETag"] == head["ETag"]
    assert await _uploads(s3) == []

    more = await s3.writer("uploads/v/data", append=True)
    await more.write(b"tail")
    await more.close()
    assert await s3.get_content("uploads/v/data") == data + b"tail"
