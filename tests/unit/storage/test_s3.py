"""What the S3 driver promises beyond the shared contract, against a real Ceph radosgw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from dockyard.app.services import configured_storage
from dockyard.settings import Settings
from dockyard.storage.base import PathNotFound
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
    redirecting = S3Driver(s3_config(prefix=s3.config.prefix, redirect=True))
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
