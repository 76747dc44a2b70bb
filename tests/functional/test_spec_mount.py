"""OCI Distribution spec 1.1, Push: mounting a blob from another repository."""

from __future__ import annotations

import httpx

from tests.support.oci import (
    OCTET_STREAM,
    OciClient,
    location_of,
    oci_manifest,
    random_blob,
    unique_repo,
    with_query,
)


def mount(oci: OciClient, repo: str, digest: str, source: str) -> httpx.Response:
    return oci.http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"mount": digest, "from": source},
        headers={"Content-Length": "0"},
    )


def assert_new_session(oci: OciClient, resp: httpx.Response, data: bytes, digest: str) -> None:
    """A 202 answer to a mount is an ordinary upload session the client can finish."""
    assert resp.status_code == 202, resp.text
    location = location_of(resp)
    done = oci.http.put(
        with_query(location, digest=digest), content=data, headers={"Content-Type": OCTET_STREAM}
    )
    assert done.status_code == 201, done.text


def test_mount_blob_from_another_repository(oci: OciClient) -> None:
    source, target = unique_repo("mount-src"), unique_repo("mount-dst")
    blob = random_blob(2048)
    oci.push_blob(source, blob)

    resp = mount(oci, target, blob.digest, source)
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == blob.digest
    pulled = oci.http.get(location_of(resp))
    assert pulled.status_code == 200
    assert pulled.content == blob.data

    resp = oci.get_blob(target, blob.digest)
    assert resp.status_code == 200
    assert resp.content == blob.data
    assert oci.head_blob(target, blob.digest).headers["docker-content-digest"] == blob.digest


def test_mounted_blobs_satisfy_a_manifest_push(oci: OciClient) -> None:
    source, target = unique_repo("mount-manifest-src"), unique_repo("mount-manifest-dst")
    manifest = oci_manifest()
    oci.push(source, manifest, "v1")

    for blob in manifest.blobs:
        assert mount(oci, target, blob.digest, source).status_code == 201
    oci.push_manifest(target, "v1", manifest)
    assert oci.get_manifest(target, "v1").content == manifest.body


def test_mount_of_an_unknown_blob_starts_an_upload(oci: OciClient) -> None:
    source, target = unique_repo("mount-missing-src"), unique_repo("mount-missing-dst")
    oci.push_blob(source, random_blob(10))
    blob = random_blob(300)

    resp = mount(oci, target, blob.digest, source)
    assert_new_session(oci, resp, blob.data, blob.digest)
    assert oci.get_blob(target, blob.digest).content == blob.data


def test_mount_from_a_repository_without_the_blob_starts_an_upload(oci: OciClient) -> None:
    """The blob exists in the registry, but not in ``from``: no mount, a new session."""
    holder, source, target = (
        unique_repo("mount-holder"),
        unique_repo("mount-empty-src"),
        unique_repo("mount-dst"),
    )
    blob = random_blob(400)
    oci.push_blob(holder, blob)
    oci.push_blob(source, random_blob(10))

    resp = mount(oci, target, blob.digest, source)
    assert_new_session(oci, resp, blob.data, blob.digest)
    assert oci.get_blob(target, blob.digest).content == blob.data


def test_mount_from_an_unknown_repository_starts_an_upload(oci: OciClient) -> None:
    target = unique_repo("mount-nosrc-dst")
    blob = random_blob(100)
    oci.push_blob(unique_repo("mount-nosrc-holder"), blob)

    resp = mount(oci, target, blob.digest, unique_repo("mount-never-created"))
    assert_new_session(oci, resp, blob.data, blob.digest)


def test_mount_into_the_same_repository(oci: OciClient) -> None:
    repo = unique_repo("mount-self")
    blob = random_blob(100)
    oci.push_blob(repo, blob)

    resp = mount(oci, repo, blob.digest, repo)
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == blob.digest
    assert oci.get_blob(repo, blob.digest).content == blob.data
