"""OCI Distribution spec 1.1: repository names and tags, valid and invalid.

A name is path components matching ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*`` joined by ``/``; a tag
matches ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``. Invalid ones are a 4xx, never a 5xx.
"""

from __future__ import annotations

import pytest

from tests.support.oci import (
    OciClient,
    assert_error,
    assert_not_server_error,
    oci_manifest,
    random_blob,
    raw_request,
    sha256,
    unique_repo,
)
from tests.support.servers import RunningRegistry

INVALID_NAMES = [
    pytest.param("Upper/case", id="uppercase"),
    pytest.param("spec/UPPER", id="uppercase-component"),
    pytest.param("a" * 256, id="too-long"),
    pytest.param("/".join(["abcdefghij"] * 30), id="too-long-components"),
    pytest.param("-leading/dash", id="leading-dash"),
    pytest.param("trailing-/dash", id="trailing-dash"),
    pytest.param("double..dot", id="double-dot"),
    pytest.param("sp ace", id="space"),
    pytest.param("semi;colon", id="semicolon"),
]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_repository_name_is_rejected(oci: OciClient, registry: RunningRegistry, name: str) -> None:
    requests = [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/manifests/latest"),
        ("GET", f"/v2/{name}/blobs/{sha256(b'x')}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
    ]
    for method, path in requests:
        resp = oci.http.request(method, path)
        assert_not_server_error(resp)
        if registry.is_dockyard:
            assert_error(resp, 400, "NAME_INVALID")
        else:
            # The reference registry's router answers names it cannot match with a plain-text
            # 404, or routes a suffix of the path as a name and answers MANIFEST_UNKNOWN.
            assert_error(resp, (400, 404), json_required=False)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/spec/../etc/tags/list",
        "/v2/spec/%2E%2E/etc/tags/list",
        "/v2/../v2/spec/x/tags/list",
        "/v2/spec//x/tags/list",
        "/v2/spec/x%2Fy/tags/list",
    ],
)
def test_path_traversal_in_repository_name_is_rejected(registry: RunningRegistry, path: str) -> None:
    resp = raw_request(registry.url, "GET", path)
    # Go's router (the reference registry) redirects to the cleaned path instead.
    allowed = {400, 404} if registry.is_dockyard else {301, 400, 404}
    assert resp.status in allowed, (resp.status, resp.body[:300])


INVALID_TAGS = [
    pytest.param(".dot", id="leading-dot"),
    pytest.param("-dash", id="leading-dash"),
    pytest.param("t" * 129, id="too-long"),
    pytest.param("bad+plus", id="plus"),
    pytest.param("bad%20space", id="space"),
    pytest.param("bad!", id="bang"),
]


@pytest.mark.parametrize("tag", INVALID_TAGS)
def test_invalid_tag_is_rejected(oci: OciClient, registry: RunningRegistry, repo: str, tag: str) -> None:
    manifest = oci_manifest()
    oci.push(repo, manifest)  # by digest: only the tag is wrong below

    resp = oci.put_manifest(repo, tag, manifest)
    # The reference registry's router does not match invalid tags at all (plain 404).
    assert_error(
        resp,
        400 if registry.is_dockyard else (400, 404),
        "TAG_INVALID",
        "MANIFEST_INVALID",
        json_required=registry.is_dockyard,
    )
    # GET and HEAD: the spec's endpoint table allows only 404 (no manifest has that tag).
    get = oci.get_manifest(repo, tag)
    assert_not_server_error(get)
    assert_error(get, 404, "MANIFEST_UNKNOWN", json_required=registry.is_dockyard)
    assert_error(oci.head_manifest(repo, tag), 404)
    # DELETE may answer 400 (TAG_INVALID): the spec lists it for that endpoint.
    delete = oci.delete_manifest(repo, tag)
    assert_error(
        delete,
        400 if registry.is_dockyard else (400, 404, 405),
        "TAG_INVALID",
        json_required=registry.is_dockyard,
    )


def test_a_128_character_tag_is_valid(oci: OciClient, repo: str) -> None:
    manifest = oci_manifest()
    tag = "_" + "T" * 127
    oci.push(repo, manifest, tag)
    assert oci.get_manifest(repo, tag).content == manifest.body


def _valid_names() -> list[str]:
    base = unique_repo("names-valid")
    return [
        f"{base}/x__y",
        f"{base}/a---b.c_d",
        f"{base}/a/b/c/d/e/f",
        f"{base}/0numeric/9",
        f"{base}/" + "n" * (200 - len(base)),
    ]


def test_unusual_but_valid_names_work(oci: OciClient) -> None:
    for name in _valid_names():
        manifest = oci_manifest()
        oci.push(name, manifest, "v1")
        assert oci.get_manifest(name, "v1").content == manifest.body
        assert oci.tags(name).json() == {"name": name, "tags": ["v1"]}


@pytest.mark.parametrize("keyword", ["blobs", "manifests", "tags", "referrers", "uploads", "v2"])
def test_names_containing_api_keywords_are_routed_correctly(oci: OciClient, keyword: str) -> None:
    """``<name>/manifests/...`` where the name itself ends in ``/manifests`` (and alike)."""
    base = unique_repo(f"names-kw-{keyword}")
    name = f"{base}/{keyword}/{keyword}"
    manifest = oci_manifest()
    oci.push(name, manifest, keyword)

    assert oci.get_manifest(name, keyword).content == manifest.body
    assert oci.get_manifest(name, manifest.digest).content == manifest.body
    assert oci.get_blob(name, manifest.blobs[0].digest).content == manifest.blobs[0].data
    assert oci.tags(name).json() == {"name": name, "tags": [keyword]}
    assert_error(oci.get_manifest(base, keyword), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert_error(oci.get_manifest(f"{base}/{keyword}", keyword), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_tags_are_case_sensitive(oci: OciClient) -> None:
    name = unique_repo("names-tag-case")
    lower, upper = oci_manifest(), oci_manifest()
    oci.push(name, lower, "latest")
    oci.push(name, upper, "Latest")

    assert oci.get_manifest(name, "latest").content == lower.body
    assert oci.get_manifest(name, "Latest").content == upper.body
    assert_error(oci.get_manifest(name, "LATEST"), 404, "MANIFEST_UNKNOWN")
    # Lexical or ASCIIbetical order are both allowed.
    assert oci.tags(name).json()["tags"] in (["Latest", "latest"], ["latest", "Latest"])


def test_repositories_are_independent(oci: OciClient) -> None:
    """``a`` and ``a/b`` are unrelated repositories, whatever their names share."""
    parent = unique_repo("names-nested")
    child = f"{parent}/child"
    blob = random_blob(100)
    first, second = oci_manifest(), oci_manifest()
    oci.push(parent, first, "v1")
    oci.push(child, second, "v1")
    oci.push_blob(child, blob)

    assert oci.get_manifest(parent, "v1").content == first.body
    assert oci.get_manifest(child, "v1").content == second.body
    assert_error(oci.get_blob(parent, blob.digest), 404, "BLOB_UNKNOWN")
    assert_error(oci.get_manifest(parent, second.digest), 404, "MANIFEST_UNKNOWN")
