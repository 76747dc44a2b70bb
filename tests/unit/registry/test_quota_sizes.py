"""Sizes in and out: what an admin may type for a quota (``parse_size``, bounded and finite)
and how a refusal prints the numbers (``human_bytes``, never rounding two different sizes to
the same text)."""

from __future__ import annotations

import math

import pytest

from dockyard.registry.errors import QuotaExceeded, human_bytes
from dockyard.settings import MAX_SIZE, Settings, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1 << 20),
        ("500MiB", 500 << 20),
        ("1.5 GiB", 3 << 29),
        ("2TB", 2 * 10**12),
        ("300M", 300 * 10**6),
        ("64kib", 64 << 10),
        ("10b", 10),
        (12, 12),
        (MAX_SIZE, MAX_SIZE),
    ],
)
def test_sizes_an_admin_may_type(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "bad",
    ["", "lots", "1e3", "nan", "-1", "5 XB", "ib", "9000000PiB", -1, 1.5, math.inf, math.nan, True, [1]],
)
def test_sizes_that_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"size|bytes"):
        parse_size(bad)


def test_the_default_quota_setting_takes_a_size_and_its_former_name_still_works() -> None:
    assert Settings(default_workspace_quota="2GiB").effective_default_quota == 2 << 30
    assert Settings(workspace_quota_bytes=5000).effective_default_quota == 5000
    assert Settings().effective_default_quota is None
    with pytest.raises(ValueError, match="not a size"):
        Settings(default_workspace_quota="lots")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1 << 20, "1 MiB"),
        (1032294, "1008 KiB"),
        ((1 << 20) + (1 << 16), "1.06 MiB"),
        (500 << 40, "500 TiB"),
        (int(1.25 * (1 << 30)), "1.25 GiB"),
    ],
)
def test_sizes_in_messages(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_the_refusal_says_the_numbers() -> None:
    refused = QuotaExceeded("lab", 900 << 20, 300 << 20, 1 << 30)
    assert str(refused).startswith(
        "quota exceeded: workspace lab would use 1.17 GiB of its 1 GiB quota "
        "(this blob 300 MiB, stored 900 MiB)"
    )


def test_a_refusal_before_anything_is_sent_says_the_workspace_is_over() -> None:
    refused = QuotaExceeded("lab", 3 << 20, 0, 1 << 20, "this archive")
    assert str(refused).startswith("quota exceeded: workspace lab stores 3 MiB, over its 1 MiB quota;")
