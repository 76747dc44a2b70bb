"""OCI Distribution spec 1.1, Push: blob uploads (monolithic, single POST, chunked, resumed)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.oci import (
    OCTET_STREAM,
    OciClient,
    assert_error,
    location_of,
    random_bytes,
    sha256,
    unique_repo,
    with_query,
)
from tests.support.servers import RunningRegistry


def patch_chunk(http: httpx.Client, location: str, chunk: bytes, start: int) -> httpx.Response:
    return http.patch(
        location,
        content=chunk,
        headers={"Content-Type": OCTET_STREAM, "Content-Range": f"{start}-{start + len(chunk) - 1}"},
    )


def assert_upload_progress(resp: httpx.Response, status: int, uploaded: int) -> str:
    """An upload session response: ``status``, ``Range: 0-<last byte>``, a Location; returns it."""
    assert resp.status_code == status, resp.text
    assert resp.headers.get("range") == f"0-{uploaded - 1}"
    assert resp.headers.get("docker-upload-uuid")
    return location_of(resp)


def assert_blob_stored(oci: OciClient, repo: str, data: bytes) -> None:
    resp = oci.get_blob(repo, sha256(data))
    assert resp.status_code == 200
    assert resp.content == data


def test_post_starts_an_upload_session(oci: OciClient) -> None:
    repo = unique_repo("upload-post")
    resp = oci.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    assert resp.status_code == 202
    location = location_of(resp)
    session = resp.headers.get("docker-upload-uuid")
    assert session
    assert session in location, f"session {session!r} is not in Location {location!r}"
    second = location_of(oci.start_upload(repo))
    assert second != location, "two sessions got the same Location"


def test_monolithic_upload_post_then_put(oci: OciClient) -> None:
    repo = unique_repo("upload-monolithic")
    data = random_bytes(100_000)
    digest = sha256(data)
    location = location_of(oci.start_upload(repo))

    resp = oci.http.put(
        with_query(location, digest=digest), content=data, headers={"Content-Type": OCTET_STREAM}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == digest
    pulled = oci.http.get(location_of(resp))
    assert pulled.status_code == 200
    assert pulled.content == data


def test_single_post_with_digest(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("upload-single-post")
    data = random_bytes(5000)
    digest = sha256(data)

    resp = oci.http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": OCTET_STREAM},
    )
    # A registry without single-POST uploads SHOULD answer 202 and let the client PUT (the
    # reference registry does); Dockyard supports it.
    assert resp.status_code in ({201} if registry.is_dockyard else {201, 202}), resp.text
    if resp.status_code == 202:
        resp = oci.http.put(
            with_query(location_of(resp), digest=digest), content=data, headers={"Content-Type": OCTET_STREAM}
        )
    assert resp.status_code == 201
    assert resp.headers["docker-content-digest"] == digest
    assert oci.http.get(location_of(resp)).content == data


def test_chunked_upload_with_content_range(oci: OciClient) -> None:
    repo = unique_repo("upload-chunked")
    data = random_bytes(30_000)
    location = location_of(oci.start_upload(repo))

    uploaded = 0
    for size in (10_000, 15_000, 5_000):
        resp = patch_chunk(oci.http, location, data[uploaded : uploaded + size], uploaded)
        uploaded += size
        location = assert_upload_progress(resp, 202, uploaded)

    resp = oci.http.put(with_query(location, digest=sha256(data)), headers={"Content-Length": "0"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == sha256(data)
    assert location_of(resp)
    assert_blob_stored(oci, repo, data)


def test_completed_upload_session_is_gone(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("upload-completed")
    data = random_bytes(100)
    location = location_of(oci.start_upload(repo))
    location = location_of(patch_chunk(oci.http, location, data, 0))
    assert oci.http.put(with_query(location, digest=sha256(data))).status_code == 201

    # The reference registry calls a finished session's URL BLOB_UPLOAD_INVALID.
    codes = (
        ["BLOB_UPLOAD_UNKNOWN"] if registry.is_dockyard else ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"]
    )
    assert_error(oci.http.get(location), 404, *codes)
    assert_error(patch_chunk(oci.http, location, data, 100), 404, *codes)


def test_streamed_patch_with_chunked_transfer_encoding(oci: OciClient) -> None:
    """Docker and containerd stream layers with ``Transfer-Encoding: chunked`` and no length."""
    repo = unique_repo("upload-transfer-chunked")
    data = random_bytes(8 * 1024 * 1024 + 123)
    location = location_of(oci.start_upload(repo))

    def body() -> Iterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    resp = oci.http.patch(location, content=body(), headers={"Content-Type": OCTET_STREAM})
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    location = assert_upload_progress(resp, 202, len(data))
    resp = oci.http.put(with_query(location, digest=sha256(data)))
    assert resp.status_code == 201, resp.text
    assert_blob_stored(oci, repo, data)


def test_sha512_digest_is_supported(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("upload-sha512")
    data = random_bytes(2000)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = location_of(oci.start_upload(repo))
    # Docker-Content-Digest MAY name the canonical (sha256) digest instead, as the reference does.
    reported = {digest} if registry.is_dockyard else {digest, sha256(data)}

    resp = oci.http.put(
        with_query(location, digest=digest), content=data, headers={"Content-Type": OCTET_STREAM}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] in reported
    pulled = oci.get_blob(repo, digest)
    assert pulled.status_code == 200
    assert pulled.content == data
    assert pulled.headers["docker-content-digest"] in reported


def test_chunked_upload_with_last_chunk_in_put(oci: OciClient) -> None:
    repo = unique_repo("upload-chunked-put")
    data = random_bytes(20_000)
    location = location_of(oci.start_upload(repo))
    location = assert_upload_progress(patch_chunk(oci.http, location, data[:12_000], 0), 202, 12_000)

    resp = oci.http.put(
        with_query(location, digest=sha256(data)),
        content=data[12_000:],
        headers={"Content-Type": OCTET_STREAM, "Content-Range": f"12000-{len(data) - 1}"},
    )
    assert resp.status_code == 201, resp.text
    assert_blob_stored(oci, repo, data)


def test_streamed_patch_without_content_range(oci: OciClient) -> None:
    repo = unique_repo("upload-streamed")
    data = random_bytes(8_000)
    location = location_of(oci.start_upload(repo))

    resp = oci.http.patch(location, content=data, headers={"Content-Type": OCTET_STREAM})
    location = assert_upload_progress(resp, 202, len(data))
    resp = oci.http.put(with_query(location, digest=sha256(data)))
    assert resp.status_code == 201, resp.text
    assert_blob_stored(oci, repo, data)


@pytest.mark.parametrize("bad_start", [20, 5], ids=["gap", "overlap"])
def test_out_of_order_chunk_is_416_with_current_range(oci: OciClient, bad_start: int) -> None:
    repo = unique_repo("upload-out-of-order")
    data = random_bytes(40)
    location = location_of(oci.start_upload(repo))
    location = assert_upload_progress(patch_chunk(oci.http, location, data[:10], 0), 202, 10)

    resp = patch_chunk(oci.http, location, data[bad_start : bad_start + 10], bad_start)
    assert_error(resp, 416, json_required=False)
    assert resp.headers.get("range") == "0-9"

    # The session is unchanged: its status still says 10 bytes, and the upload can go on.
    status = oci.http.get(location)
    location = assert_upload_progress(status, 204, 10)
    location = assert_upload_progress(patch_chunk(oci.http, location, data[10:], 10), 202, len(data))
    assert oci.http.put(with_query(location, digest=sha256(data))).status_code == 201
    assert_blob_stored(oci, repo, data)


def test_first_chunk_not_at_zero_is_416(oci: OciClient) -> None:
    repo = unique_repo("upload-first-chunk")
    location = location_of(oci.start_upload(repo))
    assert_error(patch_chunk(oci.http, location, b"later", 5), 416, json_required=False)


def test_upload_status_reports_range(oci: OciClient) -> None:
    repo = unique_repo("upload-status")
    data = random_bytes(1234)
    location = location_of(oci.start_upload(repo))
    location = location_of(patch_chunk(oci.http, location, data, 0))

    resp = oci.http.get(location)
    assert resp.status_code == 204
    assert resp.content == b""
    assert resp.headers["range"] == "0-1233"
    assert resp.headers.get("docker-upload-uuid")
    assert location_of(resp)


def test_cancelled_upload_becomes_unknown(oci: OciClient) -> None:
    repo = unique_repo("upload-cancel")
    data = random_bytes(100)
    location = location_of(oci.start_upload(repo))
    location = location_of(patch_chunk(oci.http, location, data, 0))

    resp = oci.http.delete(location)
    assert resp.status_code == 204

    assert_error(oci.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch_chunk(oci.http, location, data, 100), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(oci.http.put(with_query(location, digest=sha256(data))), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(oci.get_blob(repo, sha256(data)), 404, "BLOB_UNKNOWN")


def test_unknown_upload_session_is_404(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("upload-unknown")
    oci.start_upload(repo)
    location = f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}"
    # The reference registry keeps session state in the Location's query, so to it a made-up
    # session URL is BLOB_UPLOAD_INVALID rather than BLOB_UPLOAD_UNKNOWN (both 404).
    codes = (
        ["BLOB_UPLOAD_UNKNOWN"] if registry.is_dockyard else ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"]
    )

    assert_error(oci.http.get(location), 404, *codes)
    assert_error(patch_chunk(oci.http, location, b"abc", 0), 404, *codes)
    assert_error(oci.http.put(with_query(location, digest=sha256(b"abc"))), 404, *codes)
    assert_error(oci.http.delete(location), 404, *codes)


def test_wrong_digest_at_put_is_400_and_nothing_is_stored(oci: OciClient) -> None:
    repo = unique_repo("upload-wrong-digest")
    data = random_bytes(500)
    claimed = sha256(random_bytes(500))
    location = location_of(oci.start_upload(repo))

    resp = oci.http.put(
        with_query(location, digest=claimed), content=data, headers={"Content-Type": OCTET_STREAM}
    )
    assert_error(resp, 400, "DIGEST_INVALID")
    assert_error(oci.get_blob(repo, claimed), 404, "BLOB_UNKNOWN")
    assert_error(oci.get_blob(repo, sha256(data)), 404, "BLOB_UNKNOWN")


def test_put_without_digest_is_400(oci: OciClient) -> None:
    repo = unique_repo("upload-no-digest")
    location = location_of(oci.start_upload(repo))
    resp = oci.http.put(location, content=b"data", headers={"Content-Type": OCTET_STREAM})
    assert_error(resp, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID")


def test_resume_upload_after_client_restart(registry: RunningRegistry) -> None:
    """A client uploads part of a blob, goes away, and a new process finishes the upload."""
    repo = unique_repo("upload-resume")
    data = random_bytes(50_000)

    with OciClient.connect(registry.url) as first:
        location = location_of(first.start_upload(repo))
        resp = patch_chunk(first.http, location, data[:20_000], 0)
        location = assert_upload_progress(resp, 202, 20_000)

    with OciClient.connect(registry.url) as second:
        status = second.http.get(location)
        location = assert_upload_progress(status, 204, 20_000)
        offset = int(status.headers["range"].split("-")[1]) + 1
        resp = patch_chunk(second.http, location, data[offset:], offset)
        location = assert_upload_progress(resp, 202, len(data))
        resp = second.http.put(with_query(location, digest=sha256(data)))
        assert resp.status_code == 201, resp.text
        assert_blob_stored(second, repo, data)


def test_pushing_an_existing_blob_again_succeeds(oci: OciClient) -> None:
    repo = unique_repo("upload-twice")
    data = random_bytes(300)
    assert oci.push_blob(repo, data) == oci.push_blob(repo, data)
    assert_blob_stored(oci, repo, data)


def test_concurrent_sessions_for_one_blob_both_complete(oci: OciClient) -> None:
    repo = unique_repo("upload-concurrent")
    data = random_bytes(4096)
    first = location_of(oci.start_upload(repo))
    second = location_of(oci.start_upload(repo))
    first = location_of(patch_chunk(oci.http, first, data[:2048], 0))
    second = location_of(patch_chunk(oci.http, second, data[:1000], 0))

    assert oci.http.put(with_query(first, digest=sha256(data)), content=data[2048:]).status_code == 201
    resp = oci.http.put(
        with_query(second, digest=sha256(data)),
        content=data[1000:],
        headers={"Content-Type": OCTET_STREAM, "Content-Range": f"1000-{len(data) - 1}"},
    )
    assert resp.status_code == 201, resp.text
    assert_blob_stored(oci, repo, data)
