"""The one parser of ``Range``, ``Content-Range`` and ``Content-Length`` values."""

from __future__ import annotations

import pytest

from dockyard.oci.ranges import ContentRange, RangeSpec, parse_content_range, parse_length, parse_range

HOSTILE = ["1" * 5000, "9" * 20, "9223372036854775808", "\u00b2", "\u0663", "-1", "1e3", ""]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", RangeSpec(0, None)),
        ("bytes=10-19", RangeSpec(10, 19)),
        ("bytes=-5", RangeSpec(None, 5)),
        (" BYTES = 7 - 8 ", RangeSpec(7, 8)),
        ("bytes=9223372036854775807-", RangeSpec(2**63 - 1, None)),
    ],
)
def test_a_single_range(header: str, expected: RangeSpec) -> None:
    assert parse_range(header) == expected


@pytest.mark.parametrize(
    "header", ["bytes=", "bytes=-", "bytes=20-10", "bytes=0-9,20-29", "items=0-9", "0-9"]
)
def test_malformed_ranges(header: str) -> None:
    assert parse_range(header) is None


@pytest.mark.parametrize("number", [n for n in HOSTILE if n], ids=repr)  # '': an open range
def test_a_range_with_a_number_that_does_not_fit_is_malformed(number: str) -> None:
    assert parse_range(f"bytes={number}-") is None
    assert parse_range(f"bytes=0-{number}") is None
    assert parse_range(f"bytes=-{number}") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes 0-99/1000", ContentRange(0, 99, 1000)),
        ("bytes=100-199", ContentRange(100, 199, None)),
        ("0-0/*", ContentRange(0, 0, None)),
        (" 5-9 ", ContentRange(5, 9, None)),
    ],
)
def test_a_content_range(header: str, expected: ContentRange) -> None:
    assert parse_content_range(header) == expected
    assert expected.length == expected.end - expected.start + 1


@pytest.mark.parametrize("number", HOSTILE, ids=repr)
def test_a_content_range_with_a_number_that_does_not_fit_is_malformed(number: str) -> None:
    assert parse_content_range(f"bytes {number}-1/2") is None
    assert parse_content_range(f"bytes 0-{number}/2") is None
    assert parse_content_range(f"bytes 0-1/{number}") is None


def test_a_content_range_that_ends_before_it_starts_is_malformed() -> None:
    assert parse_content_range("bytes 10-9/20") is None


@pytest.mark.parametrize("number", HOSTILE, ids=repr)
def test_a_length_that_does_not_fit_is_none(number: str) -> None:
    assert parse_length(number) is None


def test_a_length() -> None:
    assert parse_length("1234") == 1234
    assert parse_length("0") == 0
