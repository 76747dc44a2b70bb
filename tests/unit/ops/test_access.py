"""Metric labels of the access log: a fixed, small set whatever paths clients send."""

from __future__ import annotations

import pytest

from dockyard.ops.access import route_of


def test_paths_outside_v2_share_a_few_labels() -> None:
    paths = [f"/a{i}" for i in range(250)]
    paths += [f"/api/v1/thing{i}" for i in range(250)]
    paths += [f"/{i}/deep/path" for i in range(250)]
    paths += [f"/healthz/{i}" for i in range(125)] + [f"/v2x{i}" for i in range(125)]
    assert len(set(paths)) == 1000
    assert {route_of(path) for path in paths} <= {"healthz", "metrics", "api", "other"}


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/healthz", "healthz"),
        ("/metrics", "metrics"),
        ("/api", "api"),
        ("/api/v1/repositories", "api"),
        ("/", "other"),
        ("", "other"),
        ("/favicon.ico", "other"),
        ("/apix", "other"),
        ("/v2evil", "other"),
        ("/v2", "v2"),
        ("/v2/", "v2"),
        ("/v2/_catalog", "v2_catalog"),
        ("/v2/library/alpine/manifests/latest", "v2/manifests"),
        ("/v2/library/alpine/blobs/sha256:abc", "v2/blobs"),
        ("/v2/library/alpine/blobs/uploads/1234", "v2/blobs/uploads"),
        ("/v2/library/alpine/tags/list", "v2/tags/list"),
        ("/v2/library/alpine/referrers/sha256:abc", "v2/referrers"),
    ],
)
def test_route_labels(path: str, route: str) -> None:
    assert route_of(path) == route
