"""The one parser of ``Range``, ``Content-Range`` and ``Content-Length`` values."""

from __future__ import annotations

import pytest

from dockyard.oci.ranges import (
    ContentRange,
    RangeSpec,
    parse_content_range,
    parse_length,
    parse_range,
    parse_served_range,
)

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


@pytest.mark.parametrize(
    ("spec", "part"),
    [
        (RangeSpec(0, None), (0, 1000)),
        (RangeSpec(10, 19), (10, 20)),
        (RangeSpec(990, 5000), (990, 1000)),  # an end past the end is the end
        (RangeSpec(999, None), (999, 1000)),
        (RangeSpec(None, 100), (900, 1000)),
        (RangeSpec(None, 5000), (0, 1000)),  # more than there is: all of it
    ],
)
def test_the_bytes_a_range_names(spec: RangeSpec, part: tuple[int, int]) -> None:
    assert spec.within(1000) == part


@pytest.mark.parametrize("spec", [RangeSpec(1000, None), RangeSpec(5000, 6000), RangeSpec(None, 0)])
def test_a_range_past_the_end_or_of_no_bytes_is_unsatisfiable(spec: RangeSpec) -> None:
    assert spec.within(1000) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes 0-99/1000", ContentRange(0, 99, 1000)),
        ("bytes 512-1023/1024", ContentRange(512, 1023, 1024)),
        (" bytes 5-9/10 ", ContentRange(5, 9, 10)),
    ],
)
def test_a_served_range(header: str, expected: ContentRange) -> None:
    assert parse_served_range(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes 0-99/*",
        "bytes 0-99",
        "bytes=0-99/1000",
        "0-99/1000",
        "BYTES 0-99/1000",
        "bytes 10-9/20",
        "bytes */1000",
    ],
)
def test_a_served_range_needs_the_unit_and_the_complete_length(header: str) -> None:
    assert parse_served_range(header) is None


@pytest.mark.parametrize("number", HOSTILE, ids=repr)
def test_a_served_range_with_a_number_that_does_not_fit_is_malformed(number: str) -> None:
    assert parse_served_range(f"bytes {number}-1/2") is None
    assert parse_served_range(f"bytes 0-{number}/2") is None
    assert parse_served_range(f"bytes 0-1/{number}") is None


@pytest.mark.parametrize("number", HOSTILE, ids=repr)
def test_a_length_that_does_not_fit_is_none(number: str) -> None:
    assert parse_length(number) is None


def test_a_length() -> None:
    assert parse_length("1234") == 1234
    assert parse_length("0") == 0
