"""One byte range of a response (RFC 9110 section 14): parsing ``Range`` with ``If-Range``.

Only single ranges are served; a request for several, a malformed header, a unit other
than bytes, or an ``If-Range`` that does not name the current representation (by strong
ETag) gets the whole representation, which the RFC allows a server to answer any
``Range`` with. A range that starts at or past the end is unsatisfiable (416). The header,
and which bytes it names, is :mod:`dockyard.oci.ranges`'s business, as on every door.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.oci.ranges import parse_range


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # exclusive
    satisfiable: bool = True


def span_of(range_header: str | None, if_range: str | None, etag: str, size: int) -> Span | None:
    """The part of a ``size``-byte representation to send, or ``None`` for all of it."""
    if not range_header:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None  # changed since the client's first part (or a date: we have no Last-Modified)
    spec = parse_range(range_header)
    if spec is None:
        return None  # malformed, several ranges, or an invalid range-spec: ignore the header
    part = spec.within(size)
    if part is None:
        start = spec.first or 0
        return Span(start, start, satisfiable=False)
    return Span(*part)
