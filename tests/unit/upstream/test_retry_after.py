"""An upstream's Retry-After is believed up to an hour: a huge, negative or garbage value never
reaches a client as it came (nor crashes the answer)."""

from __future__ import annotations

import math

import pytest

from dockyard.upstream.results import MAX_RETRY_AFTER, Failed, clamp_retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30.0, 30.0),
        (0, 0.0),
        (10.0**12, MAX_RETRY_AFTER),
        (math.inf, MAX_RETRY_AFTER),
        (1e308 * 10, MAX_RETRY_AFTER),  # inf again, by overflow
        (-5.0, 0.0),
        (-math.inf, 0.0),
        (math.nan, None),
        ("120", 120.0),
        ("soon", None),
        ("nan", None),
        (True, None),
        (None, None),
        ([30], None),
    ],
)
def test_retry_after_is_clamped_to_an_hour(value: object, expected: float | None) -> None:
    assert clamp_retry_after(value) == expected


def test_a_failure_keeps_only_a_clamped_retry_after() -> None:
    assert Failed("rate_limited", "slow down", 429, 10.0**12).retry_after == MAX_RETRY_AFTER
    assert Failed("rate_limited", "slow down", 429, math.nan).retry_after is None
    assert Failed("rate_limited", "slow down", 429, -1.0).retry_after == 0.0
    assert Failed("rate_limited", "slow down", 429, 42.5).retry_after == 42.5
