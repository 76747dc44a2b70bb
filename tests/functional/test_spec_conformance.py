"""What the OCI distribution-spec conformance suite expects and the other spec tests do not
already pin: its chunked-upload flow (a retried chunk, the status of a stale session URL), a
mount without ``from``, the mount's Location, and the manifests its push and discovery setups
upload (no layers, a custom config media type, an artifactType, pretty-printed and nested
indexes with annotations). The invalid-tag GET/HEAD case is in test_spec_pull."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.oci import (
    EMPTY_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    OCTET_STREAM,
    Blob,
    OciClient,
    image_config,
    location_of,
    oci_manifest,
    random_blob,
    random_bytes,
    sha256,
    unique_repo,
    with_query,
)
from tests.support.servers import RunningRegistry

CUSTOM_CONFIG = "application/vnd.example.config.v1+json"
ARTIFACT = "application/vnd.example.artifact.v1"
INDEX_ARTIFACT = "application/vnd.example.index.artifact.v1"


def _patch(http: httpx.Client, location: str, chunk: bytes, start: int) -> httpx.Response:
    return http.patch(
        location,
        content=chunk,
        headers={"Content-Type": OCTET_STREAM, "Content-Range": f"{start}-{start + len(chunk) - 1}"},
    )


def _put_json(
    oci: OciClient, repo: str, reference: str, document: dict[str, Any], indent: str | None
) -> bytes:
    """PUT ``document`` serialised as given (the suite sends Go's MarshalIndent with tabs); returns
    the bytes, after checking the push was accepted."""
    body = json.dumps(document, indent=indent).encode()
    media_type = document["mediaType"]
    resp = oci.http.put(
        f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["docker-content-digest"] == sha256(body)
    assert location_of(resp)
    return body


def test_chunked_upload_with_a_retried_chunk_and_a_stale_session_url(
    oci: OciClient, registry: RunningRegistry
) -> None:
    repo = unique_repo("conformance-chunked")
    data = random_bytes(25)
    first, second = data[:3], data[3:]
    session = location_of(oci.start_upload(repo))

    resp = _patch(oci.http, session, first, 0)
    assert resp.status_code == 202, resp.text
    assert resp.headers["range"] == "0-2"

    # The same chunk again, at the session URL the POST gave: the upload is past it. (Debian's
    # CNCF Distribution 2.8 keeps session state in that URL, and predates this expectation.)
    retried = _patch(oci.http, session, first, 0)
    assert retried.status_code in ((416,) if registry.is_dockyard else (404, 416)), retried.text
    # That URL still names the session: its status is the bytes received, and where to go on.
    status = oci.http.get(session if registry.is_dockyard else location_of(resp))
    assert status.status_code == 204
    assert status.headers["range"] == "0-2"
    location = location_of(status)

    resp = _patch(oci.http, location, second, 3)
    assert resp.status_code == 202, resp.text
    assert resp.headers["range"] == f"0-{len(data) - 1}"
    done = oci.http.put(
        with_query(location_of(resp), digest=sha256(data)),
        headers={"Content-Length": "0", "Content-Type": OCTET_STREAM},
    )
    assert done.status_code == 201, done.text
    assert oci.get_blob(repo, sha256(data)).content == data


def test_mount_without_from_starts_an_upload(oci: OciClient) -> None:
    repo = unique_repo("conformance-mount-no-from")
    blob = random_blob(32)
    oci.push_blob(unique_repo("conformance-mount-elsewhere"), blob)

    resp = oci.http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest})
    assert resp.status_code == 202, resp.text
    location = location_of(resp)
    assert httpx.URL(location).path.startswith(f"/v2/{repo}/blobs/uploads/")
    done = oci.http.put(with_query(location, digest=blob.digest), content=blob.data)
    assert done.status_code == 201, done.text
    assert oci.get_blob(repo, blob.digest).content == blob.data


def test_mount_location_names_the_blob_in_the_target_repository(oci: OciClient) -> None:
    source, target = unique_repo("conformance-mount-from"), unique_repo("conformance-mount-to")
    blob = random_blob(32)
    oci.push_blob(source, blob)

    resp = oci.http.post(f"/v2/{target}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    assert resp.status_code == 201, resp.text
    assert httpx.URL(location_of(resp)).path == f"/v2/{target}/blobs/{blob.digest}"
    got = oci.http.get(location_of(resp))
    assert got.status_code == 200
    assert got.content == blob.data


def test_image_manifest_without_layers_is_accepted(oci: OciClient) -> None:
    repo = unique_repo("conformance-no-layers")
    config = image_config()
    oci.push_blob(repo, config)
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": []}

    body = _put_json(oci, repo, "empty", document, None)
    assert oci.get_manifest(repo, "empty").content == body
    assert oci.get_manifest(repo, sha256(body)).content == body


def test_artifacts_by_config_media_type_and_by_artifact_type_are_accepted(
    oci: OciClient, registry: RunningRegistry
) -> None:
    repo = unique_repo("conformance-artifacts")
    subject = oci_manifest()
    oci.push(repo, subject, "v1")
    custom_config = Blob(b'{"custom":true}', CUSTOM_CONFIG)
    payload = random_blob(16, "application/vnd.example.payload")
    oci.push_blobs(repo, [custom_config, EMPTY_CONFIG, payload])

    by_config: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": custom_config.descriptor(),
        "layers": [payload.descriptor()],
        "subject": subject.descriptor(),
    }
    by_artifact_type: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [EMPTY_CONFIG.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {"org.example.note": "copied into the referrers listing"},
    }
    bodies = {
        sha256(body): body
        for body in (
            _put_json(oci, repo, sha256(json.dumps(d).encode()), d, None)
            for d in (by_config, by_artifact_type)
        )
    }
    for digest, body in bodies.items():
        assert oci.get_manifest(repo, digest).content == body
    if not registry.is_dockyard:
        return  # Debian's CNCF Distribution 2.8 has no referrers API

    listing = oci.referrers(repo, subject.digest).json()["manifests"]
    found = {d["digest"]: (d.get("artifactType"), d.get("annotations")) for d in listing}
    assert found == {
        sha256(json.dumps(by_config).encode()): (CUSTOM_CONFIG, None),
        sha256(json.dumps(by_artifact_type).encode()): (ARTIFACT, by_artifact_type["annotations"]),
    }


def test_pretty_printed_and_nested_indexes_with_artifact_type_are_accepted(oci: OciClient) -> None:
    repo = unique_repo("conformance-indexes")
    image = oci_manifest()
    oci.push(repo, image, "v1")
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": INDEX_ARTIFACT,
        "manifests": [image.descriptor()],
        "annotations": {"org.example.key": "test index"},
    }
    index_body = _put_json(oci, repo, sha256(json.dumps(index, indent="\t").encode()), index, "\t")
    nested: dict[str, Any] = {
        **index,
        "manifests": [{"mediaType": OCI_INDEX, "digest": sha256(index_body), "size": len(index_body)}],
    }
    nested_body = _put_json(oci, repo, sha256(json.dumps(nested, indent="\t").encode()), nested, "\t")

    for body in (index_body, nested_body):
        got = oci.get_manifest(repo, sha256(body))
        assert got.status_code == 200
        assert got.headers["content-type"] == OCI_INDEX
        assert got.content == body
