"""``Range`` / ``If-Range`` parsing for downloads (RFC 9110 section 14)."""

from __future__ import annotations

import pytest

from dockyard.http.ranges import Span, span_of

ETAG = '"abc"'
SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", Span(0, 1000)),
        ("bytes=500-", Span(500, 1000)),
        ("bytes=10-19", Span(10, 20)),
        ("bytes=10-10", Span(10, 11)),
        ("bytes=990-5000", Span(990, 1000)),
        ("bytes=-100", Span(900, 1000)),
        ("bytes=-5000", Span(0, 1000)),
        ("BYTES = 7 - 8", Span(7, 9)),
        ("bytes=999-", Span(999, 1000)),
    ],
)
def test_single_ranges_are_served(header: str, expected: Span) -> None:
    assert span_of(header, None, ETAG, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_ranges_past_the_end_are_unsatisfiable(header: str) -> None:
    found = span_of(header, None, ETAG, SIZE)
    assert found is not None
    assert not found.satisfiable


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "bytes=20-10", "bytes=0-9,20-29", "items=0-9", "bytes=a-b", "0-9"],
)
def test_missing_malformed_or_multiple_ranges_get_everything(header: str | None) -> None:
    assert span_of(header, None, ETAG, SIZE) is None


def test_if_range_resumes_only_the_same_archive() -> None:
    assert span_of("bytes=10-", ETAG, ETAG, SIZE) == Span(10, 1000)
    assert span_of("bytes=10-", '"other"', ETAG, SIZE) is None
    assert span_of("bytes=10-", "Sat, 01 Jan 2000 00:00:00 GMT", ETAG, SIZE) is None
    assert span_of("bytes=10-", 'W/"abc"', ETAG, SIZE) is None  # weak validators never match If-Range


@pytest.mark.parametrize(
    "header",
    [
        "bytes=" + "1" * 5000 + "-",
        "bytes=0-" + "9" * 5000,
        "bytes=-" + "9" * 5000,
        "bytes=\u00b2-",
        "bytes=0-\u0663",
        "bytes=9223372036854775808-",
    ],
    ids=["5000-digit-start", "5000-digit-end", "5000-digit-suffix", "superscript", "arabic-digit", "2**63"],
)
def test_numbers_that_are_not_small_ascii_numbers_get_everything(header: str) -> None:
    # int() refuses more than 4,300 digits and takes Unicode digits: neither may crash a download.
    assert span_of(header, None, ETAG, SIZE) is None
