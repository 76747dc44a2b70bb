"""How a cache repository's name maps to its upstream, and the revalidation durations accepted."""

from __future__ import annotations

import pytest

from dockyard.registry.errors import NameUnknown
from dockyard.upstream.cache import split_cached
from dockyard.upstream.cache_admin import parse_duration


@pytest.mark.parametrize(
    ("repository", "host", "path"),
    [
        ("mirror/docker.io/library/alpine", "docker.io", "library/alpine"),
        ("mirror/docker.io/alpine", "docker.io", "library/alpine"),
        ("mirror/index.docker.io/alpine", "docker.io", "library/alpine"),
        ("mirror/quay.io/biocontainers/samtools", "quay.io", "biocontainers/samtools"),
        ("mirror/127.0.0.1_5000/lab/tool", "127.0.0.1:5000", "lab/tool"),
        ("mirror/localhost/tool", "localhost", "tool"),
        ("mirror/registry.example.org_443/a/b/c", "registry.example.org:443", "a/b/c"),
    ],
)
def test_the_first_component_after_the_workspace_is_the_upstream(
    repository: str, host: str, path: str
) -> None:
    assert split_cached(repository) == (host, path)


@pytest.mark.parametrize("repository", ["mirror/alpine", "mirror/library/alpine", "mirror/docker.io"])
def test_a_name_without_an_upstream_host_is_refused_with_the_naming(repository: str) -> None:
    with pytest.raises(NameUnknown, match=r"name images <cache>/<registry host>/<path>"):
        split_cached(repository)


@pytest.mark.parametrize(
    ("value", "seconds"), [(600, 600), ("600", 600), ("10m", 600), ("2h", 7200), ("1d", 86400)]
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10 minutes", "-5m", "1.5h", "", "9999999999s"])
def test_bad_durations_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="a duration such as"):
        parse_duration(value)
