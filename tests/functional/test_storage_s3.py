"""Dockyard serving from S3 (Ceph radosgw) with presigned redirects: a blob GET answers 307 to
the bucket, and the client fetches the bytes from radosgw itself."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.s3 import s3_env
from tests.support.servers import RunningRegistry, start_dockyard


@pytest.fixture
def redirecting(tmp_path: Path) -> Iterator[RunningRegistry]:
    server = start_dockyard("sqlite", tmp_path, extra_env={**s3_env(), "DOCKYARD_S3_REDIRECT": "true"})
    yield server
    server.stop()


def test_blob_gets_redirect_to_presigned_bucket_urls(redirecting: RunningRegistry) -> None:
    data = b"layer bytes kept in radosgw " * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=redirecting.url, timeout=60) as client:
        started = client.post("/v2/s3/redirect/blobs/uploads/")
        assert started.status_code == 202
        done = client.put(started.headers["Location"], params={"digest": digest}, content=data)
        assert done.status_code == 201

        answer = client.get(f"/v2/s3/redirect/blobs/{digest}")
        assert answer.status_code == 307
        assert answer.headers["Docker-Content-Digest"] == digest
        location = answer.headers["Location"]
        assert location.startswith(s3_env()["DOCKYARD_S3_ENDPOINT"])
        fetched = httpx.get(location, timeout=60)
        assert fetched.status_code == 200
        assert fetched.content == data
        missing = client.get(f"/v2/s3/redirect/blobs/sha256:{'0' * 64}")
        assert missing.status_code == 404
