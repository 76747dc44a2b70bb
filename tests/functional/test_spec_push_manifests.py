"""OCI Distribution spec 1.1, Push: manifests (by tag and digest, validation, size limit)."""

from __future__ import annotations

import json

import pytest

from tests.support.oci import (
    MANIFEST_KINDS,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    OciClient,
    assert_error,
    encode,
    image_config,
    location_of,
    manifest_of_kind,
    oci_index,
    oci_manifest,
    random_blob,
    unique_repo,
)
from tests.support.servers import RunningRegistry

FOUR_MIB = 4 * 1024 * 1024


def push_dependencies(oci: OciClient, repo: str, manifest: Manifest) -> None:
    oci.push_blobs(repo, manifest.blobs)
    for child in manifest.children:
        oci.push(repo, child)


def padded_manifest(total_size: int) -> Manifest:
    """An OCI image manifest of exactly ``total_size`` bytes (padded with an annotation)."""
    base = oci_manifest()
    document = dict(base.document, annotations={"padding": ""})
    padding = total_size - len(encode(document))
    assert padding > 0
    document["annotations"] = {"padding": "x" * padding}
    body = encode(document)
    assert len(body) == total_size
    return base.reformatted(body)


@pytest.mark.parametrize("kind", MANIFEST_KINDS)
def test_put_manifest_by_tag(oci: OciClient, kind: str) -> None:
    repo = unique_repo(f"push-tag-{kind}")
    manifest = manifest_of_kind(kind)
    push_dependencies(oci, repo, manifest)

    resp = oci.put_manifest(repo, "v1.0", manifest)
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == manifest.digest
    pulled = oci.http.get(location_of(resp), headers={"Accept": manifest.media_type})
    assert pulled.status_code == 200
    assert pulled.content == manifest.body
    assert oci.get_manifest(repo, "v1.0").content == manifest.body


@pytest.mark.parametrize("kind", MANIFEST_KINDS)
def test_put_manifest_by_digest(oci: OciClient, kind: str) -> None:
    repo = unique_repo(f"push-digest-{kind}")
    manifest = manifest_of_kind(kind)
    push_dependencies(oci, repo, manifest)

    resp = oci.put_manifest(repo, manifest.digest, manifest)
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == manifest.digest
    assert location_of(resp)
    pulled = oci.get_manifest(repo, manifest.digest)
    assert pulled.status_code == 200
    assert pulled.content == manifest.body
    assert pulled.headers["content-type"] == manifest.media_type


def test_put_same_manifest_again_is_idempotent(oci: OciClient) -> None:
    repo = unique_repo("push-again")
    manifest = oci_manifest()
    first = oci.push(repo, manifest, "v1")
    second = oci.push_manifest(repo, "v1", manifest)
    assert (
        first.headers["docker-content-digest"] == second.headers["docker-content-digest"] == manifest.digest
    )
    assert oci.get_manifest(repo, "v1").content == manifest.body


def test_put_moves_an_existing_tag(oci: OciClient) -> None:
    repo = unique_repo("push-retag")
    old, new = oci_manifest(), oci_manifest()
    oci.push(repo, old, "latest")
    oci.push(repo, new, "latest")

    resp = oci.get_manifest(repo, "latest")
    assert resp.content == new.body
    assert resp.headers["docker-content-digest"] == new.digest
    assert oci.get_manifest(repo, old.digest).content == old.body


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_manifest_referencing_unknown_blob_is_rejected(oci: OciClient, missing: str) -> None:
    repo = unique_repo(f"push-blob-unknown-{missing}")
    config, layer = image_config(), random_blob(100)
    oci.push_blob(repo, layer if missing == "config" else config)
    manifest = oci_manifest(config, [layer])

    resp = oci.put_manifest(repo, "v1", manifest)
    assert_error(resp, (400, 404), "MANIFEST_BLOB_UNKNOWN")
    assert_error(oci.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_manifest_referencing_a_blob_of_another_repository_is_rejected(oci: OciClient) -> None:
    repo, other = unique_repo("push-blob-elsewhere"), unique_repo("push-blob-elsewhere-src")
    manifest = oci_manifest()
    oci.push_blobs(other, manifest.blobs)

    assert_error(oci.put_manifest(repo, "v1", manifest), (400, 404), "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"",
        b'"a string"',
        encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}),
        encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": "nope", "layers": []}),
        b"\xff\xfe\x00garbage",
    ],
    ids=["truncated", "array", "empty", "string", "no-config", "config-not-object", "binary"],
)
def test_malformed_manifest_is_400_manifest_invalid(
    oci: OciClient, registry: RunningRegistry, body: bytes
) -> None:
    repo = unique_repo("push-malformed")
    oci.push(repo, oci_manifest(), "ok")

    resp = oci.http.put(f"/v2/{repo}/manifests/bad", content=body, headers={"Content-Type": OCI_MANIFEST})
    # The reference registry takes a missing config for a reference to an unknown blob.
    codes = ["MANIFEST_INVALID"] if registry.is_dockyard else ["MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN"]
    assert_error(resp, 400, *codes)
    assert_error(oci.get_manifest(repo, "bad"), 404, "MANIFEST_UNKNOWN")


def test_put_by_digest_with_other_content_is_400_digest_invalid(oci: OciClient) -> None:
    repo = unique_repo("push-digest-mismatch")
    manifest, other = oci_manifest(), oci_manifest()
    push_dependencies(oci, repo, manifest)

    resp = oci.put_manifest(repo, other.digest, manifest)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert_error(oci.get_manifest(repo, other.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(oci.get_manifest(repo, manifest.digest), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("kind", ["oci-index", "docker-manifest-list"])
def test_index_referencing_unknown_manifest_is_rejected(oci: OciClient, kind: str) -> None:
    repo = unique_repo(f"push-index-unknown-{kind}")
    index = manifest_of_kind(kind)
    present, absent = index.children
    oci.push(repo, present)
    oci.push_blobs(repo, absent.blobs)  # its blobs are there, the manifest itself is not

    resp = oci.put_manifest(repo, "multi", index)
    assert_error(resp, (400, 404), "MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN")
    assert_error(oci.get_manifest(repo, "multi"), 404, "MANIFEST_UNKNOWN")


def test_index_of_indexes_is_accepted(oci: OciClient) -> None:
    repo = unique_repo("push-nested-index")
    inner = oci_index([oci_manifest()])
    outer = oci_index([inner])
    oci.push(repo, outer, "nested")
    assert oci.get_manifest(repo, "nested").content == outer.body
    assert oci.get_manifest(repo, inner.digest).headers["content-type"] == OCI_INDEX


def test_manifest_of_four_mib_is_accepted(oci: OciClient) -> None:
    """Clients and registries SHOULD support manifests of at least 4 MiB."""
    repo = unique_repo("push-large")
    manifest = padded_manifest(FOUR_MIB - 8192)
    resp = oci.push(repo, manifest, "large")
    assert resp.headers["docker-content-digest"] == manifest.digest
    assert oci.get_manifest(repo, "large").content == manifest.body


def test_oversize_manifest_is_rejected(oci: OciClient, registry: RunningRegistry) -> None:
    repo = unique_repo("push-oversize")
    manifest = padded_manifest(FOUR_MIB + 64 * 1024)
    push_dependencies(oci, repo, manifest)

    resp = oci.put_manifest(repo, "huge", manifest)
    # The spec says SHOULD 413; the reference registry answers 400 MANIFEST_INVALID.
    assert_error(resp, 413 if registry.is_dockyard else (400, 413), "MANIFEST_INVALID", "SIZE_INVALID")
    assert_error(oci.get_manifest(repo, "huge"), 404, "MANIFEST_UNKNOWN")


def test_manifest_without_media_type_field_takes_the_content_type(oci: OciClient) -> None:
    """``mediaType`` is only RECOMMENDED in a manifest; the PUT's Content-Type then names it."""
    repo = unique_repo("push-no-media-type")
    base = oci_manifest()
    document = {k: v for k, v in base.document.items() if k != "mediaType"}
    manifest = base.reformatted(encode(document))
    oci.push(repo, manifest, "v1")

    resp = oci.get_manifest(repo, "v1")
    assert resp.content == manifest.body
    assert resp.headers["content-type"] == OCI_MANIFEST


def test_manifest_content_type_parameters_are_ignored(oci: OciClient) -> None:
    """Registries SHOULD ignore parameters on the Content-Type of a manifest PUT."""
    repo = unique_repo("push-ct-params")
    manifest = oci_manifest()
    push_dependencies(oci, repo, manifest)

    resp = oci.put_manifest(repo, "v1", manifest, content_type=f"{OCI_MANIFEST}; charset=utf-8")
    assert resp.status_code == 201, resp.text
    pulled = oci.get_manifest(repo, "v1")
    assert pulled.headers["content-type"] == OCI_MANIFEST
    assert json.loads(pulled.content) == manifest.document
