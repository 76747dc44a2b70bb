"""OCI Distribution spec 1.1, error reporting: the error envelope, invalid names, tags and
parameters, and unsupported methods. Malformed input is a 4xx, never a 5xx."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.support.oci import (
    OCI_MANIFEST,
    OciClient,
    assert_error,
    assert_not_server_error,
    error_codes,
    location_of,
    oci_manifest,
    random_blob,
    random_bytes,
    sha256,
    unique_repo,
    with_query,
)
from tests.support.servers import RunningRegistry


def test_error_bodies_have_the_spec_envelope(oci: OciClient, repo: str) -> None:
    missing = sha256(b"missing")
    responses = [
        oci.get_blob(repo, missing),
        oci.get_manifest(repo, "absent"),
        oci.tags(unique_repo("errors-unknown")),
        oci.http.put(f"/v2/{repo}/manifests/bad", content=b"{", headers={"Content-Type": OCI_MANIFEST}),
        oci.http.get(f"/v2/{repo}/blobs/sha256:nothex"),
    ]
    for resp in responses:
        assert 400 <= resp.status_code < 500, resp.status_code
        assert resp.headers["content-type"].startswith("application/json")
        codes = error_codes(resp)
        body = json.loads(resp.content)
        for error in body["errors"]:
            assert error["message"], f"empty message in {error}"
        assert codes


@pytest.mark.parametrize("reference", ["sha256:xyz", "sha256:" + "a" * 63, "md5:" + "a" * 32, "a:b:c"])
def test_malformed_manifest_digest_is_4xx(
    oci: OciClient, registry: RunningRegistry, repo: str, reference: str
) -> None:
    for method in ("GET", "HEAD", "DELETE"):
        resp = oci.http.request(method, f"/v2/{repo}/manifests/{reference}")
        assert_not_server_error(resp)
        codes = ["DIGEST_INVALID"] if registry.is_dockyard else ["DIGEST_INVALID", "MANIFEST_UNKNOWN"]
        assert_error(
            resp, 400 if registry.is_dockyard else (400, 404), *codes, json_required=registry.is_dockyard
        )


@pytest.mark.parametrize(
    "n",
    ["-1", "abc", "1.5", "\u00b2", "1" * 5000],
    ids=["negative", "letters", "fraction", "superscript-two", "5000-digits"],
)
@pytest.mark.parametrize("endpoint", ["tags", "catalog"])
def test_invalid_page_size_is_400(
    oci: OciClient, registry: RunningRegistry, repo: str, endpoint: str, n: str
) -> None:
    path = f"/v2/{repo}/tags/list" if endpoint == "tags" else "/v2/_catalog"
    resp = oci.http.get(path, params={"n": n})
    assert_not_server_error(resp)
    # The spec does not define a bad ``n``; Dockyard rejects it, the reference registry ignores it.
    if registry.is_dockyard:
        assert_error(resp, 400, "PAGINATION_NUMBER_INVALID")
    else:
        assert resp.status_code in (200, 400)


UNSUPPORTED = [
    ("DELETE", "/v2/"),
    ("PATCH", "/v2/{repo}/manifests/v1"),
    ("POST", "/v2/{repo}/manifests/v1"),
    ("POST", "/v2/{repo}/tags/list"),
    ("DELETE", "/v2/{repo}/tags/list"),
    ("PUT", "/v2/{repo}/blobs/{digest}"),
    ("PATCH", "/v2/{repo}/blobs/{digest}"),
    ("POST", "/v2/{repo}/blobs/{digest}"),
    ("PUT", "/v2/_catalog"),
    ("POST", "/v2/{repo}/referrers/{digest}"),
    ("DELETE", "/v2/{repo}/referrers/{digest}"),
    ("GET", "/v2/{repo}/blobs/uploads/"),
    ("PUT", "/v2/{repo}/blobs/uploads/"),
]


@pytest.mark.parametrize(("method", "template"), UNSUPPORTED)
def test_unsupported_method_is_405_or_404(
    oci: OciClient, registry: RunningRegistry, repo: str, method: str, template: str
) -> None:
    path = template.format(repo=repo, digest=sha256(b"whatever"))
    resp = oci.http.request(method, path, content=b"")
    assert_not_server_error(resp)
    # The reference registry answers any method on /v2/ with 200.
    allowed = {404, 405} if registry.is_dockyard or path != "/v2/" else {200, 404, 405}
    assert resp.status_code in allowed, (resp.status_code, resp.text[:300])
    if resp.status_code == 405 and registry.is_dockyard:
        assert error_codes(resp) == ["UNSUPPORTED"]
        assert resp.headers.get("allow")


def test_unknown_v2_path_is_404(oci: OciClient, registry: RunningRegistry) -> None:
    for path in ("/v2/nothing-here", "/v2/spec/x/unknown/thing", "/v2/spec/x/blobs/"):
        resp = oci.http.get(path)
        assert_error(resp, 404, json_required=registry.is_dockyard)


def test_upload_with_invalid_digest_parameter_is_400(oci: OciClient, repo: str) -> None:
    location = location_of(oci.start_upload(repo))
    resp = oci.http.put(
        with_query(location, digest="sha256:nothex"),
        content=b"abc",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_error(resp, 400, "DIGEST_INVALID")


# Python's int() refuses more than 4,300 digits; such numbers are malformed input, not a crash.
HUGE = "9" * 5000


@pytest.mark.parametrize(
    "value", [f"bytes=0-{HUGE}", f"bytes={HUGE}-", f"bytes=-{HUGE}"], ids=["end", "start", "suffix"]
)
def test_blob_range_with_a_huge_number_is_416(
    oci: OciClient, registry: RunningRegistry, repo: str, value: str
) -> None:
    digest = oci.push_blob(repo, random_bytes(100))
    if not registry.is_dockyard:
        # The reference's 416 declares the blob's length but sends a shorter body, which httpx
        # refuses to read: check its status line only.
        host, port = registry.host.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": value})
            assert conn.getresponse().status == 416
        finally:
            conn.close()
        return
    resp = oci.get_blob(repo, digest, Range=value)
    assert_error(resp, 416, "RANGE_INVALID")
    assert resp.headers["content-range"] == "bytes */100"


@pytest.mark.parametrize("value", [f"0-{HUGE}", f"{HUGE}-{HUGE}"], ids=["end", "both"])
def test_upload_content_range_with_a_huge_number_is_416(
    oci: OciClient, registry: RunningRegistry, repo: str, value: str
) -> None:
    location = location_of(oci.start_upload(repo))
    resp = oci.http.patch(
        location, content=b"abc", headers={"Content-Type": "application/octet-stream", "Content-Range": value}
    )
    assert_not_server_error(resp)
    if registry.is_dockyard:  # the reference registry ignores the header and takes the chunk
        assert_error(resp, 416, "RANGE_INVALID")


def test_deeply_nested_manifest_is_invalid(oci: OciClient, registry: RunningRegistry, repo: str) -> None:
    resp = oci.http.put(
        f"/v2/{repo}/manifests/deep", content=b"[" * 100_000, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_not_server_error(resp)
    assert_error(resp, 400, "MANIFEST_INVALID", json_required=registry.is_dockyard)


def test_manifest_with_too_many_layers_is_invalid(
    oci: OciClient, registry: RunningRegistry, repo: str
) -> None:
    # ~1.2 MB, within the size limit. The cap keeps every descriptor list far below
    # PostgreSQL's 32,767 bound parameters, which a larger list would break with a 500.
    manifest = oci_manifest(layers=[random_blob(8) for _ in range(10_001)])
    resp = oci.put_manifest(repo, "many-layers", manifest)
    assert_not_server_error(resp)
    if registry.is_dockyard:
        assert_error(resp, 400, "MANIFEST_INVALID")
        assert "10001 layers" in resp.json()["errors"][0]["message"]
    else:
        assert_error(resp, 400, "MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", json_required=False)
