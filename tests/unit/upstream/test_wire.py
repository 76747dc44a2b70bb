"""What another registry sends is untrusted: its numbers are read without a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from dockyard.upstream.results import UpstreamFailure
from dockyard.upstream.wire import read_bounded, retry_after_seconds

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Mon, 07 Dec 2026 12:01:00 GMT", 60.0),
        ("Mon, 07 Dec 2026 11:00:00 GMT", 0.0),
        ("\u00b2", None),  # str.isdigit() says yes; int() refuses it
        ("9" * 5000, None),  # past int()'s digit limit
        ("99999999999999999999", None),  # past 2**63
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_nothing(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, NOW) == expected


async def test_a_bogus_content_length_is_not_a_number_but_the_body_is_still_bounded() -> None:
    for declared in ("\u00b2".encode("latin-1"), b"9" * 5000):  # as a server's header bytes
        response = httpx.Response(
            200, headers=[(b"content-length", declared)], stream=httpx.ByteStream(b"x" * 100)
        )
        with pytest.raises(UpstreamFailure, match="larger than 10 bytes"):
            await read_bounded(response, 10, "a manifest", "the registry", truncate=False)
    declared_big = httpx.Response(
        200, headers=[(b"content-length", b"1000")], stream=httpx.ByteStream(b"x" * 5)
    )
    with pytest.raises(UpstreamFailure, match="of 1000 bytes"):
        await read_bounded(declared_big, 10, "a manifest", "the registry", truncate=False)
