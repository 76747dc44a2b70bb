"""OCI Distribution spec 1.1, Content Discovery: tag lists and the catalog, with pagination."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.oci import (
    OciClient,
    assert_error,
    next_link,
    oci_manifest,
    unique_repo,
)
from tests.support.servers import RunningRegistry

TAGS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]


def push_tags(oci: OciClient, repo: str, tags: list[str]) -> None:
    manifest = oci_manifest()
    oci.push(repo, manifest)
    shuffled = list(tags)
    random.shuffle(shuffled)
    for tag in shuffled:
        oci.push_manifest(repo, tag, manifest)


def assert_next_link(resp: httpx.Response, path: str, n: int, last: str) -> str:
    """``Link: <path?n=N&last=LAST>; rel="next"`` (parameters in any order); returns the target."""
    link = next_link(resp)
    assert link is not None, f"no Link header on a partial page: {dict(resp.headers)}"
    parts = urlsplit(link)
    assert parts.path == path
    assert parse_qs(parts.query) == {"n": [str(n)], "last": [last]}
    return link


def test_tags_list_is_sorted(oci: OciClient) -> None:
    repo = unique_repo("tags-sorted")
    push_tags(oci, repo, TAGS)

    resp = oci.tags(repo)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {"name": repo, "tags": TAGS}
    assert next_link(resp) is None


def test_tags_list_in_ascii_order_with_digits_and_case(oci: OciClient) -> None:
    repo = unique_repo("tags-ascii")
    tags = ["1.0", "1.10", "1.2", "latest", "v1", "v1.0.0-rc1", "v1_0"]
    push_tags(oci, repo, tags)
    assert oci.tags(repo).json()["tags"] == sorted(tags)


def test_tags_pagination_with_n_and_link(oci: OciClient) -> None:
    repo = unique_repo("tags-paged")
    push_tags(oci, repo, TAGS)
    path = f"/v2/{repo}/tags/list"

    resp = oci.tags(repo, n=2)
    assert resp.status_code == 200
    assert resp.json() == {"name": repo, "tags": ["alpha", "bravo"]}
    link: str | None = assert_next_link(resp, path, 2, "bravo")

    seen = ["alpha", "bravo"]
    while link is not None:
        resp = oci.http.get(link)
        assert resp.status_code == 200
        page = resp.json()["tags"]
        assert 0 < len(page) <= 2
        seen.extend(page)
        link = next_link(resp)
        if link is not None:
            assert_next_link(resp, path, 2, page[-1])
    assert seen == TAGS


def test_tags_last_parameter(oci: OciClient) -> None:
    repo = unique_repo("tags-last")
    push_tags(oci, repo, TAGS)

    resp = oci.tags(repo, n=2, last="bravo")
    assert resp.status_code == 200
    assert resp.json()["tags"] == ["charlie", "delta"]

    resp = oci.tags(repo, last="delta")
    assert resp.status_code == 200
    assert resp.json()["tags"] == ["echo", "foxtrot", "golf"]

    # ``last`` need not be an existing tag: the list goes on after it in lexical order.
    assert oci.tags(repo, n=3, last="d").json()["tags"] == ["delta", "echo", "foxtrot"]
    resp = oci.tags(repo, n=3, last="golf")
    assert resp.json()["tags"] == []
    assert next_link(resp) is None


def test_tags_n_larger_than_the_list(oci: OciClient) -> None:
    repo = unique_repo("tags-n-large")
    push_tags(oci, repo, TAGS)
    resp = oci.tags(repo, n=100)
    assert resp.json()["tags"] == TAGS
    assert next_link(resp) is None


def test_tags_n_equal_to_the_list_has_full_page(oci: OciClient) -> None:
    repo = unique_repo("tags-n-exact")
    push_tags(oci, repo, TAGS)
    resp = oci.tags(repo, n=len(TAGS))
    assert resp.json()["tags"] == TAGS
    link = next_link(resp)
    if link is not None:  # a registry MAY not know the list ended; the next page is then empty
        assert oci.http.get(link).json()["tags"] == []


def test_tags_n_zero_is_an_empty_list_without_link(oci: OciClient) -> None:
    repo = unique_repo("tags-n-zero")
    push_tags(oci, repo, TAGS)
    resp = oci.tags(repo, n=0)
    assert resp.status_code == 200
    assert resp.json()["tags"] == []
    assert "link" not in resp.headers


def test_tags_list_without_tags_is_empty(oci: OciClient, registry: RunningRegistry) -> None:
    """A repository that holds only untagged manifests: 200 with an empty list.

    Whether such a repository "exists" is the registry's choice; the reference registry
    says NAME_UNKNOWN.
    """
    repo = unique_repo("tags-none")
    oci.push(repo, oci_manifest())
    resp = oci.tags(repo)
    if not registry.is_dockyard and resp.status_code == 404:
        assert_error(resp, 404, "NAME_UNKNOWN")
        return
    assert resp.status_code == 200
    assert resp.json() == {"name": repo, "tags": []}


def test_tags_list_of_unknown_repository_is_404_name_unknown(oci: OciClient) -> None:
    assert_error(oci.tags(unique_repo("tags-unknown")), 404, "NAME_UNKNOWN")


def test_catalog_lists_created_repositories(oci: OciClient) -> None:
    prefix = unique_repo("catalog-all")
    repos = [f"{prefix}/one", f"{prefix}/two", prefix]
    for repo in repos:
        oci.push(repo, oci_manifest(), "latest")

    listed = oci.all_repositories(page_size=50)
    assert set(repos) <= set(listed)
    assert len(listed) == len(set(listed)), "a repository is listed twice"


def test_catalog_pagination(oci: OciClient) -> None:
    prefix = unique_repo("catalog-paged")
    repos = [f"{prefix}/a", f"{prefix}/b", f"{prefix}/c"]
    for repo in repos:
        oci.push(repo, oci_manifest(), "latest")

    # Start just before this test's repositories; no other repository sorts between them.
    resp = oci.catalog(n=2, last=f"{prefix}/")
    assert resp.status_code == 200
    assert resp.json() == {"repositories": repos[:2]}
    link = assert_next_link(resp, "/v2/_catalog", 2, repos[1])

    resp = oci.http.get(link)
    assert resp.status_code == 200
    assert resp.json()["repositories"][0] == repos[2]


def test_catalog_last_without_n(oci: OciClient) -> None:
    prefix = unique_repo("catalog-last")
    repos = [f"{prefix}/a", f"{prefix}/b"]
    for repo in repos:
        oci.push(repo, oci_manifest(), "latest")
    resp = oci.catalog(last=repos[0])
    assert resp.status_code == 200
    listed = resp.json()["repositories"]
    assert listed[0] == repos[1]
    assert repos[0] not in listed


def test_catalog_n_zero_is_empty(oci: OciClient) -> None:
    oci.push(unique_repo("catalog-n-zero"), oci_manifest(), "latest")
    resp = oci.catalog(n=0)
    assert resp.status_code == 200
    assert resp.json()["repositories"] == []
    assert "link" not in resp.headers
