"""OCI Distribution spec 1.1, Pull: the base endpoint, blobs (GET, HEAD, ranges) and manifests."""

from __future__ import annotations

import json

import pytest

from tests.support.oci import (
    MANIFEST_KINDS,
    OCI_MANIFEST,
    Blob,
    OciClient,
    assert_error,
    docker_manifest,
    manifest_of_kind,
    oci_manifest,
    random_blob,
    unique_repo,
)
from tests.support.servers import RunningRegistry


def test_base_endpoint_answers_200(oci: OciClient) -> None:
    resp = oci.http.get("/v2/")
    assert resp.status_code == 200
    assert resp.headers.get("docker-distribution-api-version") == "registry/2.0"


def test_blob_get_returns_exact_content_and_digest(oci: OciClient) -> None:
    repo = unique_repo("blob-get")
    blob = random_blob(70_000)
    oci.push_blob(repo, blob)

    resp = oci.get_blob(repo, blob.digest)
    assert resp.status_code == 200
    assert resp.content == blob.data
    assert resp.headers["content-length"] == str(blob.size)
    assert resp.headers["docker-content-digest"] == blob.digest


def test_blob_head_has_headers_and_no_body(oci: OciClient) -> None:
    repo = unique_repo("blob-head")
    blob = random_blob(3000)
    oci.push_blob(repo, blob)

    resp = oci.head_blob(repo, blob.digest)
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["content-length"] == str(blob.size)
    assert resp.headers["docker-content-digest"] == blob.digest


def test_empty_blob_round_trips(oci: OciClient) -> None:
    repo = unique_repo("blob-empty")
    blob = Blob(b"")
    oci.push_blob(repo, blob)

    resp = oci.get_blob(repo, blob.digest)
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["docker-content-digest"] == blob.digest
    assert oci.head_blob(repo, blob.digest).headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=10-19", 10, 19), ("bytes=0-0", 0, 0), ("bytes=990-", 990, 999), ("bytes=-5", 995, 999)],
)
def test_blob_range_request_returns_partial_content(
    oci: OciClient, range_header: str, start: int, end: int
) -> None:
    repo = unique_repo("blob-range")
    blob = random_blob(1000)
    oci.push_blob(repo, blob)

    resp = oci.get_blob(repo, blob.digest, Range=range_header)
    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes {start}-{end}/{blob.size}"
    assert resp.headers["content-length"] == str(end - start + 1)
    assert resp.content == blob.data[start : end + 1]


def test_blob_unsatisfiable_range_is_416(oci: OciClient) -> None:
    repo = unique_repo("blob-range-416")
    blob = random_blob(100)
    oci.push_blob(repo, blob)

    resp = oci.get_blob(repo, blob.digest, Range="bytes=1000-2000")
    assert resp.status_code == 416
    assert resp.headers.get("content-range") == f"bytes */{blob.size}"


def test_unknown_blob_is_404_blob_unknown(oci: OciClient) -> None:
    repo = unique_repo("blob-unknown")
    oci.push_blob(repo, random_blob(10))  # the repository exists; the blob does not
    missing = random_blob(10).digest

    assert_error(oci.get_blob(repo, missing), 404, "BLOB_UNKNOWN")
    assert_error(oci.head_blob(repo, missing), 404)
    assert_error(oci.get_blob(unique_repo("blob-unknown-repo"), missing), 404, "BLOB_UNKNOWN", "NAME_UNKNOWN")


@pytest.mark.parametrize(
    "digest",
    ["sha256:xyz", "sha256:" + "a" * 63, "sha256:" + "g" * 64, "sha256:" + "A" * 64, "md5:" + "a" * 32],
)
def test_malformed_blob_digest_is_400_digest_invalid(oci: OciClient, digest: str) -> None:
    repo = unique_repo("blob-bad-digest")
    oci.push_blob(repo, random_blob(10))

    assert_error(oci.get_blob(repo, digest), 400, "DIGEST_INVALID")
    assert_error(oci.head_blob(repo, digest), 400)


def test_blob_is_served_only_in_its_repository(oci: OciClient) -> None:
    repo, other = unique_repo("blob-scope"), unique_repo("blob-scope-other")
    blob = random_blob(100)
    oci.push_blob(repo, blob)
    oci.push_blob(other, random_blob(10))

    assert oci.get_blob(repo, blob.digest).status_code == 200
    assert_error(oci.get_blob(other, blob.digest), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("kind", MANIFEST_KINDS)
def test_manifest_get_and_head_by_tag_and_digest(oci: OciClient, kind: str) -> None:
    repo = unique_repo(f"pull-{kind}")
    manifest = manifest_of_kind(kind)
    oci.push(repo, manifest, "v1")

    for reference in ("v1", manifest.digest):
        resp = oci.get_manifest(repo, reference)
        assert resp.status_code == 200, resp.text
        assert resp.content == manifest.body
        assert resp.headers["content-type"] == manifest.media_type
        assert resp.headers["docker-content-digest"] == manifest.digest
        assert resp.headers["content-length"] == str(manifest.size)

        head = oci.head_manifest(repo, reference)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == manifest.media_type
        assert head.headers["docker-content-digest"] == manifest.digest
        assert head.headers["content-length"] == str(manifest.size)


def test_index_children_are_pullable_by_digest(oci: OciClient) -> None:
    repo = unique_repo("pull-index-children")
    index = manifest_of_kind("oci-index")
    oci.push(repo, index, "multi")

    for child in index.children:
        resp = oci.get_manifest(repo, child.digest)
        assert resp.status_code == 200
        assert resp.content == child.body
        assert resp.headers["content-type"] == child.media_type


def _unusual_formatting(document: dict[str, object]) -> bytes:
    """Reversed key order, tabs, CRLFs, spaces before colons, escaped non-ASCII, a trailing newline."""
    reordered = dict(reversed(list(document.items())))
    body = json.dumps(reordered, indent="\t", separators=(" ,", " :  "), ensure_ascii=True)
    return ("\r\n  " + body.replace("\n", "\r\n") + "\n\n").encode()


@pytest.mark.parametrize("kind", ["oci-manifest", "docker-manifest"])
def test_manifest_bytes_are_preserved_exactly(oci: OciClient, kind: str) -> None:
    repo = unique_repo(f"pull-bytes-{kind}")
    base = (
        oci_manifest(annotations={"note": "caf\u00e9 \u2603"})
        if kind == "oci-manifest"
        else docker_manifest()
    )
    manifest = base.reformatted(_unusual_formatting(base.document))
    assert manifest.digest != base.digest
    oci.push(repo, manifest, "odd")

    for reference in ("odd", manifest.digest):
        resp = oci.get_manifest(repo, reference)
        assert resp.status_code == 200
        assert resp.content == manifest.body
        assert resp.headers["docker-content-digest"] == manifest.digest


def test_manifest_get_honours_accept_of_its_media_type(oci: OciClient) -> None:
    repo = unique_repo("pull-accept")
    manifest = oci_manifest()
    oci.push(repo, manifest, "v1")

    resp = oci.get_manifest(repo, "v1", accept=OCI_MANIFEST)
    assert resp.status_code == 200
    assert resp.content == manifest.body
    assert resp.headers["content-type"] == OCI_MANIFEST


def test_unknown_manifest_is_404_manifest_unknown(oci: OciClient) -> None:
    repo = unique_repo("pull-unknown")
    oci.push(repo, oci_manifest(), "present")

    assert_error(oci.get_manifest(repo, "absent"), 404, "MANIFEST_UNKNOWN")
    assert_error(oci.get_manifest(repo, oci_manifest().digest), 404, "MANIFEST_UNKNOWN")
    assert_error(oci.head_manifest(repo, "absent"), 404)
    assert_error(
        oci.get_manifest(unique_repo("pull-unknown-repo"), "latest"), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN"
    )


@pytest.mark.parametrize(
    "tag",
    [".INVALID_MANIFEST_NAME", "-dash", "t" * 129, "bad!", "caf%C3%A9"],
    ids=["conformance-nonexistent", "leading-dash", "129-characters", "bang", "non-ascii"],
)
def test_manifest_by_invalid_tag_is_404_manifest_unknown(
    oci: OciClient, registry: RunningRegistry, tag: str
) -> None:
    """The spec's endpoint table allows only 404 for GET and HEAD of a manifest; the
    conformance suite asks for ``.INVALID_MANIFEST_NAME`` as its nonexistent manifest."""
    repo = unique_repo("pull-invalid-tag")
    oci.push(repo, oci_manifest(), "present")

    resp = oci.get_manifest(repo, tag)
    # The reference registry's router matches no invalid tag at all (a plain-text 404).
    assert_error(resp, 404, "MANIFEST_UNKNOWN", json_required=registry.is_dockyard)
    if registry.is_dockyard:
        message = resp.json()["errors"][0]["message"]
        assert "[A-Za-z0-9_.-]" in message, message  # says why no manifest can have that tag
    assert_error(oci.head_manifest(repo, tag), 404)
