"""Choosing a platform for a download: how users may spell it, and what it matches."""

from __future__ import annotations

import pytest

from dockyard.errors import Invalid
from dockyard.transfer.exports.plan import normalize_platform, platform_matches


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("Linux/ARM64/v8", "linux/arm64/v8"),
        ("arm64", "linux/arm64"),
        (" linux/arm/v7 ", "linux/arm/v7"),
        ("windows/amd64", "windows/amd64"),
    ],
)
def test_platforms_are_normalized(given: str, expected: str) -> None:
    assert normalize_platform(given) == expected


@pytest.mark.parametrize("given", ["", "/", "linux/", "linux/amd64/v2/x", "linux amd64", "linux/../amd64"])
def test_malformed_platforms_are_refused(given: str) -> None:
    with pytest.raises(Invalid, match="os/architecture"):
        normalize_platform(given)


@pytest.mark.parametrize(
    ("wanted", "candidate", "matches"),
    [
        ("linux/amd64", "linux/amd64", True),
        ("linux/arm64", "linux/arm64/v8", True),
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm64/v8", "linux/arm64/v8", True),
        ("linux/arm", "linux/arm/v7", True),
        ("linux/arm/v7", "linux/arm/v6", False),
        ("linux/arm/v7", "linux/arm", False),
        ("linux/amd64", "linux/arm64", False),
        ("linux/amd", "linux/amd64", False),
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_platform_matching(wanted: str, candidate: str, matches: bool) -> None:
    assert platform_matches(wanted, candidate) is matches
