"""Values from a /v2 request that reach Dockyard's database: refused with a spec error, or
answered as the spec says, on SQLite and PostgreSQL alike; never a 500. (Dockyard's own choices,
so not a ``test_spec_*`` file: those also run against the reference registry.)

PostgreSQL refuses a NUL in text and a string longer than its column; neither database can
store a lone surrogate. So the registry checks media types (RFC 6838: ``type/subtype``, at most
255 restricted characters), repository names and query values before they get there.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD
from tests.support.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Manifest,
    OciClient,
    artifact,
    assert_error,
    image_config,
    oci_manifest,
    random_blob,
    unique_repo,
)
from tests.support.servers import RunningRegistry

SBOM = "application/vnd.example.sbom.v1+json"
NUL = "application/vnd.example\u0000.sbom"
SURROGATE = "application/vnd.example.\ud800"
TOO_LONG = "application/" + "x" * 244  # 256 characters: one past the longest media type
LONGEST = "a" * 127 + "/" + "b" * 127  # 255 characters, each part at its RFC 6838 limit

BAD_MEDIA_TYPES = [
    pytest.param(NUL, id="nul"),
    pytest.param(SURROGATE, id="lone-surrogate"),
    pytest.param(TOO_LONG, id="256-characters"),
    pytest.param("application/json; charset=utf-8", id="parameters"),
    pytest.param("no-slash", id="no-subtype"),
    pytest.param("application/vnd.example\n", id="newline"),
]


def _with_config_media_type(media_type: str) -> Manifest:
    """An image manifest whose config descriptor has ``media_type`` (the referrers listing
    stores it as the artifactType when the manifest has none)."""
    config = image_config()
    return oci_manifest(Blob(config.data, media_type), [random_blob(64)])


def _push_blobs(oci: OciClient, repo: str, manifest: Manifest) -> None:
    """Everything the manifest references, so that only its own fields can be wrong."""
    oci.push_blobs(repo, manifest.blobs)


@pytest.mark.parametrize("media_type", BAD_MEDIA_TYPES)
def test_manifest_with_an_invalid_artifact_type_is_manifest_invalid(oci: OciClient, media_type: str) -> None:
    repo = unique_repo("stored-artifact-type")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    manifest = artifact(subject, media_type)
    _push_blobs(oci, repo, manifest)

    resp = oci.put_manifest(repo, manifest.digest, manifest)
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert "artifactType" in resp.json()["errors"][0]["message"]
    assert_error(oci.get_manifest(repo, manifest.digest), 404, "MANIFEST_UNKNOWN")
    assert oci.referrers(repo, subject.digest).json()["manifests"] == []


@pytest.mark.parametrize("media_type", BAD_MEDIA_TYPES)
def test_manifest_with_an_invalid_config_media_type_is_manifest_invalid(
    oci: OciClient, media_type: str
) -> None:
    repo = unique_repo("stored-config-media-type")
    manifest = _with_config_media_type(media_type)
    _push_blobs(oci, repo, manifest)

    resp = oci.put_manifest(repo, "v1", manifest)
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert "config.mediaType" in resp.json()["errors"][0]["message"]
    assert_error(oci.get_manifest(repo, "v1"), (404,), "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_the_longest_media_types_are_stored_and_listed(oci: OciClient) -> None:
    repo = unique_repo("stored-longest-media-type")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    by_artifact_type = artifact(subject, LONGEST)
    config = image_config()
    by_config = oci_manifest(Blob(config.data, LONGEST[::-1]), [random_blob(64)], subject=subject)
    for manifest in (by_artifact_type, by_config):
        oci.push(repo, manifest)
        assert oci.get_manifest(repo, manifest.digest).content == manifest.body

    resp = oci.referrers(repo, subject.digest)
    listed = {d["digest"]: d["artifactType"] for d in resp.json()["manifests"]}
    assert listed == {by_artifact_type.digest: LONGEST, by_config.digest: LONGEST[::-1]}
    filtered = oci.referrers(repo, subject.digest, artifact_type=LONGEST).json()["manifests"]
    assert [d["digest"] for d in filtered] == [by_artifact_type.digest]


def test_manifest_with_an_invalid_layer_media_type_is_manifest_invalid(oci: OciClient) -> None:
    repo = unique_repo("stored-layer-media-type")
    manifest = oci_manifest(layers=[random_blob(64, "application/vnd.example\u0000layer")])
    _push_blobs(oci, repo, manifest)
    resp = oci.put_manifest(repo, "v1", manifest)
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert "layers[0].mediaType" in resp.json()["errors"][0]["message"]


def test_manifest_with_a_size_beyond_int64_is_manifest_invalid(oci: OciClient) -> None:
    repo = unique_repo("stored-huge-size")
    layer = random_blob(64)
    oci.push_blob(repo, layer)
    config = image_config()
    oci.push_blob(repo, config)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor(size=2**63)],
    }
    resp = oci.http.put(
        f"/v2/{repo}/manifests/v1",
        content=json.dumps(document).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert "size" in resp.json()["errors"][0]["message"]


@pytest.mark.parametrize("length", [65, 200])
def test_repository_whose_workspace_part_is_too_long_is_name_invalid(oci: OciClient, length: int) -> None:
    repo = "w" * length + "/tool"
    manifest = oci_manifest()
    responses = [
        oci.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"}),
        oci.put_manifest(repo, "v1", manifest),
        oci.get_manifest(repo, "v1"),
        oci.tags(repo),
    ]
    for resp in responses:  # the 64-character workspace is Dockyard's own limit, not the spec's
        assert_error(resp, 400, "NAME_INVALID")
        assert "64" in resp.json()["errors"][0]["message"]


def test_repository_whose_workspace_part_is_64_characters_works(oci: OciClient) -> None:
    repo = "w" * 60 + unique_repo("ws")[-4:] + "/tool"
    manifest = oci_manifest()
    oci.push(repo, manifest, "v1")
    assert oci.get_manifest(repo, "v1").content == manifest.body


@pytest.mark.parametrize(
    "last",
    ["\u0000", "bravo\u0000zzz", "b" * 5000, "\u00e9\u00e9"],
    ids=["nul", "nul-inside", "5000-characters", "non-ascii"],
)
def test_tags_list_last_is_any_string(oci: OciClient, last: str) -> None:
    repo = unique_repo("stored-tags-last")
    manifest = oci_manifest()
    oci.push(repo, manifest)
    tags = ["alpha", "bravo", "bravo1", "charlie"]
    for tag in tags:
        oci.push_manifest(repo, tag, manifest)

    resp = oci.tags(repo, last=last)
    assert resp.status_code == 200, resp.text
    # The spec's lexical order is code point order; Python compares strings the same way.
    assert resp.json()["tags"] == [t for t in tags if t > last]
    assert oci.tags(repo, last=last, n=1).json()["tags"] == [t for t in tags if t > last][:1]


@pytest.mark.parametrize(
    "last", ["\u0000", "spec/\u0000", "s" * 5000], ids=["nul", "nul-after-prefix", "5000-characters"]
)
def test_catalog_last_is_any_string(oci: OciClient, last: str) -> None:
    after = "zz" + unique_repo("stored-catalog-last")  # sorts after every cursor below
    oci.push(after, oci_manifest(), "v1")
    resp = oci.catalog(last=last)
    assert resp.status_code == 200, resp.text
    listed = resp.json()["repositories"]
    assert after in listed
    assert all(name > last for name in listed)
    assert listed == sorted(listed)


@pytest.mark.parametrize(
    "artifact_type",
    ["\u0000", SBOM + "\u0000", "application/" + "x" * 300, "not a media type"],
    ids=["nul", "nul-suffix", "312-characters", "spaces"],
)
def test_referrers_filter_that_no_media_type_matches_is_an_empty_index(
    oci: OciClient, artifact_type: str
) -> None:
    repo = unique_repo("stored-referrers-filter")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    oci.push(repo, artifact(subject, SBOM))

    resp = oci.referrers(repo, subject.digest, artifact_type=artifact_type)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == OCI_INDEX
    assert resp.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert resp.headers.get("oci-filters-applied") == "artifactType"
    # The repository must still exist, as with any other filter.
    assert_error(
        oci.referrers(unique_repo("stored-referrers-none"), subject.digest, artifact_type=artifact_type),
        404,
        "NAME_UNKNOWN",
    )


@pytest.mark.parametrize(
    "upload",
    [
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "12345678123456781234567812345678",
        "%00",
        "x" * 5000,
    ],
    ids=["urn", "braces", "no-dashes", "nul", "5000-characters"],
)
def test_malformed_upload_id_is_blob_upload_unknown(oci: OciClient, repo: str, upload: str) -> None:
    blob = random_blob(16)
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        query = f"?digest={blob.digest}" if method == "PUT" else ""
        resp = oci.http.request(method, f"/v2/{repo}/blobs/uploads/{upload}{query}", content=blob.data)
        assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize(
    "user", ["a\u0000b", "\u0000", "admin\u0000"], ids=["inside", "alone", "after-a-user"]
)
def test_basic_credentials_with_a_nul_in_the_user_name_are_refused(
    token_registry: RunningRegistry, user: str
) -> None:
    """The Authorization header is a /v2 input too: its user name reaches the accounts table."""
    credentials = base64.b64encode(f"{user}:{ADMIN_PASSWORD}".encode()).decode()
    with httpx.Client(base_url=token_registry.url, headers={"Authorization": f"Basic {credentials}"}) as http:
        for path in ("/v2/", "/v2/spec/x/tags/list"):
            resp = http.get(path)
            assert_error(resp, 401, "UNAUTHORIZED")
            assert resp.headers["www-authenticate"].startswith("Bearer ")
    # The real admin still gets in: nothing was locked out or broken on the way.
    admin = base64.b64encode(f"{ADMIN}:{ADMIN_PASSWORD}".encode()).decode()
    assert (
        httpx.get(f"{token_registry.url}/v2/", headers={"Authorization": f"Basic {admin}"}).status_code == 200
    )
