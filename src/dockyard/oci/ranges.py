"""Byte ranges in HTTP headers, parsed in one place for every door (and for the CLI).

``Range: bytes=FIRST-LAST`` (RFC 9110 section 14.2) asks for part of a blob or an archive,
and :meth:`RangeSpec.within` says which bytes of a representation that is;
``Content-Range: bytes START-END/TOTAL`` says where a chunk of an upload goes, and where the
part a 206 answer carries belongs. Every number is ASCII digits and below 2**63 (what the
databases and file offsets hold): a larger one, or a Unicode digit such as ``²``, makes the
header malformed, never a crash in ``int()`` (which refuses more than 4,300 digits) or in a
query. What a malformed header means is the caller's decision: a download sends the whole
representation, a blob download or an upload refuses it, the CLI gives up the resume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DIGITS = 19
MAX_VALUE = 2**63 - 1

_NUMBER = rf"[0-9]{{1,{MAX_DIGITS}}}"
_RANGE = re.compile(rf"\s*bytes\s*=\s*({_NUMBER})?\s*-\s*({_NUMBER})?\s*", re.IGNORECASE)
_CONTENT_RANGE = re.compile(
    rf"\s*(?:bytes[ =])?\s*({_NUMBER})-({_NUMBER})(?:/({_NUMBER}|\*))?\s*", re.IGNORECASE
)
# What a server answers with a 206 (RFC 9110 section 14.4): the unit and the complete length.
_SERVED_RANGE = re.compile(rf"\s*bytes ({_NUMBER})-({_NUMBER})/({_NUMBER})\s*")
_LENGTH = re.compile(rf"\s*({_NUMBER})\s*")


@dataclass(frozen=True)
class RangeSpec:
    """One range asked for: ``first`` and ``last`` byte (inclusive); ``first`` is None for the
    last ``last`` bytes (``bytes=-N``), ``last`` is None for everything from ``first``."""

    first: int | None
    last: int | None

    def within(self, size: int) -> tuple[int, int] | None:
        """The bytes ``[start, end)`` of a ``size``-byte representation this range names, or
        None when it is unsatisfiable (416): it starts at or past the end, or asks for the
        last 0 bytes. A range that ends past the end stops at the end."""
        if self.first is None:  # bytes=-S: the last S bytes
            suffix = self.last or 0
            return None if suffix == 0 else (max(0, size - suffix), size)
        if self.first >= size:
            return None
        end = size if self.last is None else min(self.last + 1, size)
        return self.first, end


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive
    total: int | None  # None: not given, or '*'

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str) -> RangeSpec | None:
    """The single range of a ``Range`` header, or None if it is malformed, names another
    unit, several ranges, or ends before it starts."""
    match = _RANGE.fullmatch(header)
    if match is None or match.groups() == (None, None):
        return None
    first, last = (None if part is None else int(part) for part in match.groups())
    if not _fits(first, last) or (first is not None and last is not None and last < first):
        return None
    return RangeSpec(first, last)


def parse_content_range(header: str) -> ContentRange | None:
    """``bytes START-END/TOTAL`` (also ``bytes=``, without the unit, with ``/*`` or without a
    total), or None if it is malformed or ends before it starts."""
    match = _CONTENT_RANGE.fullmatch(header)
    if match is None:
        return None
    start, end = int(match[1]), int(match[2])
    total = int(match[3]) if match[3] not in (None, "*") else None
    if not _fits(start, end, total) or end < start:
        return None
    return ContentRange(start, end, total)


def parse_served_range(header: str) -> ContentRange | None:
    """The ``Content-Range`` of a 206 answer, ``bytes FIRST-LAST/COMPLETE`` (its ``total``
    is never None), or None if it is malformed, has no complete length or ends before it starts."""
    match = _SERVED_RANGE.fullmatch(header)
    if match is None:
        return None
    start, end, total = int(match[1]), int(match[2]), int(match[3])
    if not _fits(start, end, total) or end < start:
        return None
    return ContentRange(start, end, total)


def parse_length(header: str) -> int | None:
    """A ``Content-Length`` value, or None if it is not a plain count of bytes."""
    match = _LENGTH.fullmatch(header)
    if match is None or not _fits(length := int(match[1])):
        return None
    return length


def _fits(*numbers: int | None) -> bool:
    return all(number is None or number <= MAX_VALUE for number in numbers)
