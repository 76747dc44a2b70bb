"""OCI Distribution spec 1.1, Content Management: deleting manifests, tags and blobs."""

from __future__ import annotations

from tests.support.oci import (
    OciClient,
    assert_error,
    manifest_of_kind,
    oci_manifest,
    random_blob,
    unique_repo,
)
from tests.support.servers import RunningRegistry


def test_delete_manifest_by_digest(oci: OciClient) -> None:
    repo = unique_repo("delete-manifest")
    manifest, kept = oci_manifest(), oci_manifest()
    oci.push(repo, manifest, "doomed")
    oci.push(repo, kept, "kept")

    resp = oci.delete_manifest(repo, manifest.digest)
    assert resp.status_code == 202, resp.text

    assert_error(oci.get_manifest(repo, manifest.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(oci.head_manifest(repo, manifest.digest), 404)
    # "... and any tag pointing to that digest will return a 404".
    assert_error(oci.get_manifest(repo, "doomed"), 404, "MANIFEST_UNKNOWN")
    assert oci.get_manifest(repo, "kept").content == kept.body
    # The blobs the manifest referenced are not the manifest: they stay until GC.
    for blob in manifest.blobs:
        assert oci.get_blob(repo, blob.digest).status_code == 200


def test_delete_manifest_removes_its_tags_from_the_list(oci: OciClient) -> None:
    repo = unique_repo("delete-manifest-tags")
    manifest, kept = oci_manifest(), oci_manifest()
    oci.push(repo, manifest, "a")
    oci.push_manifest(repo, "b", manifest)
    oci.push(repo, kept, "c")

    assert oci.delete_manifest(repo, manifest.digest).status_code == 202
    resp = oci.tags(repo)
    assert resp.status_code == 200
    assert resp.json()["tags"] == ["c"]


def test_delete_tag_keeps_the_manifest(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("delete-tag")
    manifest = oci_manifest()
    oci.push(repo, manifest, "old")
    oci.push_manifest(repo, "current", manifest)

    resp = oci.delete_manifest(repo, "old")
    # Tag deletion MAY be disabled (400 or 405); the reference registry has no tag delete.
    assert resp.status_code in ({202} if registry.is_dockyard else {202, 400, 405}), resp.text
    if resp.status_code != 202:
        assert oci.get_manifest(repo, "old").status_code == 200
        return

    assert_error(oci.get_manifest(repo, "old"), 404, "MANIFEST_UNKNOWN")
    assert oci.get_manifest(repo, manifest.digest).content == manifest.body
    assert oci.get_manifest(repo, "current").content == manifest.body
    assert sorted(oci.tags(repo).json()["tags"]) == ["current"]


def test_delete_unknown_tag_is_404(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("delete-tag-unknown")
    oci.push(repo, oci_manifest(), "present")
    resp = oci.delete_manifest(repo, "absent")
    assert_error(resp, 404 if registry.is_dockyard else (400, 404, 405), "MANIFEST_UNKNOWN", "DIGEST_INVALID")


def test_delete_unknown_manifest_is_404(oci: OciClient) -> None:
    repo = unique_repo("delete-manifest-unknown")
    oci.push(repo, oci_manifest(), "present")
    assert_error(oci.delete_manifest(repo, oci_manifest().digest), 404, "MANIFEST_UNKNOWN")


def test_delete_index_keeps_its_children(oci: OciClient) -> None:
    repo = unique_repo("delete-index")
    index = manifest_of_kind("oci-index")
    oci.push(repo, index, "multi")

    assert oci.delete_manifest(repo, index.digest).status_code == 202
    assert_error(oci.get_manifest(repo, "multi"), 404, "MANIFEST_UNKNOWN")
    for child in index.children:
        assert oci.get_manifest(repo, child.digest).content == child.body


def test_deleted_manifest_can_be_pushed_again(oci: OciClient) -> None:
    repo = unique_repo("delete-repush")
    manifest = oci_manifest()
    oci.push(repo, manifest, "v1")
    assert oci.delete_manifest(repo, manifest.digest).status_code == 202

    oci.push_manifest(repo, "v1", manifest)
    assert oci.get_manifest(repo, "v1").content == manifest.body


def test_delete_blob(oci: OciClient) -> None:
    repo = unique_repo("delete-blob")
    blob, kept = random_blob(500), random_blob(500)
    oci.push_blob(repo, blob)
    oci.push_blob(repo, kept)

    resp = oci.delete_blob(repo, blob.digest)
    assert resp.status_code == 202, resp.text

    assert_error(oci.get_blob(repo, blob.digest), 404, "BLOB_UNKNOWN")
    assert_error(oci.head_blob(repo, blob.digest), 404)
    assert oci.get_blob(repo, kept.digest).content == kept.data


def test_delete_unknown_blob_is_404(oci: OciClient) -> None:
    repo = unique_repo("delete-blob-unknown")
    oci.push_blob(repo, random_blob(10))
    assert_error(oci.delete_blob(repo, random_blob(10).digest), 404, "BLOB_UNKNOWN")


def test_delete_blob_in_one_repository_keeps_it_in_another(oci: OciClient) -> None:
    first, second = unique_repo("delete-blob-shared-a"), unique_repo("delete-blob-shared-b")
    blob = random_blob(700)
    oci.push_blob(first, blob)
    oci.push_blob(second, blob)

    assert oci.delete_blob(first, blob.digest).status_code == 202
    assert_error(oci.get_blob(first, blob.digest), 404, "BLOB_UNKNOWN")
    assert oci.get_blob(second, blob.digest).content == blob.data


def test_deleted_blob_can_be_uploaded_again(oci: OciClient) -> None:
    repo = unique_repo("delete-blob-reupload")
    blob = random_blob(100)
    oci.push_blob(repo, blob)
    assert oci.delete_blob(repo, blob.digest).status_code == 202

    oci.push_blob(repo, blob)
    assert oci.get_blob(repo, blob.digest).content == blob.data
