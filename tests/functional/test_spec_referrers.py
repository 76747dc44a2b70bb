"""OCI Distribution spec 1.1, Content Discovery: manifests with a ``subject`` and the referrers API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.oci import (
    OCI_CONFIG,
    OCI_INDEX,
    Manifest,
    OciClient,
    artifact,
    assert_error,
    oci_index,
    oci_manifest,
    unique_repo,
)

SBOM = "application/vnd.example.sbom.v1+json"
SIGNATURE = "application/vnd.example.signature.v1"


def referrer_descriptor(manifest: Manifest) -> dict[str, Any]:
    """The descriptor the referrers API must list for ``manifest`` (spec: Listing Referrers)."""
    descriptor: dict[str, Any] = manifest.descriptor()
    artifact_type = manifest.document.get("artifactType")
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    elif "config" in manifest.document:
        descriptor["artifactType"] = manifest.document["config"]["mediaType"]
    if manifest.document.get("annotations"):
        descriptor["annotations"] = manifest.document["annotations"]
    return descriptor


def listed(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    """A referrers response, checked to be an OCI image index; its descriptors by digest."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == OCI_INDEX
    body = resp.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    assert isinstance(body["manifests"], list)
    by_digest = {d["digest"]: d for d in body["manifests"]}
    assert len(by_digest) == len(body["manifests"]), "a referrer is listed twice"
    return by_digest


def test_push_with_subject_returns_oci_subject(oci: OciClient) -> None:
    repo = unique_repo("referrers-subject-header")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    sbom = artifact(subject, SBOM)

    resp = oci.push(repo, sbom)
    assert resp.status_code == 201
    assert resp.headers.get("oci-subject") == subject.digest
    assert resp.headers["docker-content-digest"] == sbom.digest


def test_push_without_subject_has_no_oci_subject(oci: OciClient) -> None:
    repo = unique_repo("referrers-no-subject")
    resp = oci.push(repo, oci_manifest(), "v1")
    assert "oci-subject" not in resp.headers


def test_referrers_lists_descriptors_with_artifact_type_and_annotations(oci: OciClient) -> None:
    repo = unique_repo("referrers-list")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    sbom = artifact(subject, SBOM, annotations={"org.example.sbom.format": "json", "created": "2024-01-01"})
    signature = artifact(subject, SIGNATURE)
    # No artifactType: the descriptor takes the config's media type.
    plain = oci_manifest(subject=subject, annotations={"kind": "plain"})
    # An index referrer: its artifactType is copied when set.
    index_referrer = oci_index(
        [oci_manifest()], subject=subject, artifact_type="application/vnd.example.bundle"
    )
    unrelated = artifact(oci_manifest(), SBOM)
    for manifest in (sbom, signature, plain, index_referrer, unrelated):
        oci.push(repo, manifest)

    found = listed(oci.referrers(repo, subject.digest))
    expected = {m.digest: referrer_descriptor(m) for m in (sbom, signature, plain, index_referrer)}
    assert found == expected
    assert found[plain.digest]["artifactType"] == OCI_CONFIG


def test_index_referrer_without_artifact_type_has_none(oci: OciClient) -> None:
    repo = unique_repo("referrers-index")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    index_referrer = oci_index([oci_manifest()], subject=subject, annotations={"a": "b"})
    oci.push(repo, index_referrer)

    found = listed(oci.referrers(repo, subject.digest))
    assert found == {index_referrer.digest: referrer_descriptor(index_referrer)}
    assert "artifactType" not in found[index_referrer.digest]


def test_referrers_filter_by_artifact_type(oci: OciClient) -> None:
    repo = unique_repo("referrers-filter")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    sboms = [artifact(subject, SBOM, annotations={"n": str(i)}) for i in range(2)]
    signature = artifact(subject, SIGNATURE)
    for manifest in (*sboms, signature):
        oci.push(repo, manifest)

    resp = oci.referrers(repo, subject.digest, artifact_type=SBOM)
    found = listed(resp)
    assert resp.headers.get("oci-filters-applied") == "artifactType"
    assert found == {m.digest: referrer_descriptor(m) for m in sboms}

    resp = oci.referrers(repo, subject.digest, artifact_type="application/vnd.example.none")
    assert listed(resp) == {}
    assert resp.headers.get("oci-filters-applied") == "artifactType"

    unfiltered = oci.referrers(repo, subject.digest)
    assert len(listed(unfiltered)) == 3
    assert "oci-filters-applied" not in unfiltered.headers


def test_referrers_of_a_manifest_without_referrers_is_an_empty_index(oci: OciClient) -> None:
    repo = unique_repo("referrers-empty")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")

    assert listed(oci.referrers(repo, subject.digest)) == {}
    # An unknown digest in a known repository is not an error either.
    assert listed(oci.referrers(repo, oci_manifest().digest)) == {}


def test_subject_may_be_pushed_after_its_referrer(oci: OciClient) -> None:
    repo = unique_repo("referrers-subject-later")
    subject = oci_manifest()
    sbom = artifact(subject, SBOM, annotations={"order": "first"})

    resp = oci.push(repo, sbom, "sbom")
    assert resp.headers.get("oci-subject") == subject.digest
    assert listed(oci.referrers(repo, subject.digest)) == {sbom.digest: referrer_descriptor(sbom)}

    oci.push(repo, subject, "v1")
    assert listed(oci.referrers(repo, subject.digest)) == {sbom.digest: referrer_descriptor(sbom)}


def test_referrers_are_scoped_to_the_repository(oci: OciClient) -> None:
    repo, other = unique_repo("referrers-scope"), unique_repo("referrers-scope-other")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    oci.push(other, subject, "v1")
    oci.push(repo, artifact(subject, SBOM))

    assert len(listed(oci.referrers(repo, subject.digest))) == 1
    assert listed(oci.referrers(other, subject.digest)) == {}


def test_deleted_referrer_is_no_longer_listed(oci: OciClient) -> None:
    repo = unique_repo("referrers-delete")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    sbom, signature = artifact(subject, SBOM), artifact(subject, SIGNATURE)
    oci.push(repo, sbom)
    oci.push(repo, signature)

    assert oci.delete_manifest(repo, sbom.digest).status_code == 202
    assert listed(oci.referrers(repo, subject.digest)) == {signature.digest: referrer_descriptor(signature)}


def test_referrer_of_an_index_subject(oci: OciClient) -> None:
    repo = unique_repo("referrers-index-subject")
    subject = oci_index([oci_manifest(), oci_manifest()])
    oci.push(repo, subject, "multi")
    signature = artifact(subject, SIGNATURE)

    resp = oci.push(repo, signature)
    assert resp.headers.get("oci-subject") == subject.digest
    assert listed(oci.referrers(repo, subject.digest)) == {signature.digest: referrer_descriptor(signature)}


@pytest.mark.parametrize("digest", ["sha256:xyz", "sha256:" + "a" * 10, "nodigest"])
def test_referrers_with_invalid_digest_is_400(oci: OciClient, digest: str) -> None:
    repo = unique_repo("referrers-bad-digest")
    oci.push(repo, oci_manifest(), "v1")
    assert_error(oci.referrers(repo, digest), 400, "DIGEST_INVALID")
