"""What the TRS endpoint accepts: query values read as text and checked here, so that every
refusal is a TRS ``Error`` (400) that says which value and why, never a 500.

Paging numbers are plain decimal digits (no sign, exponent, ``nan`` or ``inf``) within
bounds: ``offset`` up to PostgreSQL's integer, ``limit`` from 1 to :data:`MAX_LIMIT` (the
spec's default page is 1,000 records). Texts are at most 255 characters without NUL.
"""

from __future__ import annotations

from dockyard.errors import Invalid

MAX_OFFSET = 2**31 - 1
MAX_LIMIT = 1000
TEXT_LENGTH = 255


def whole_number(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise Invalid(f"{name} must be a whole number from {low} to {high}, not {value[:40]!r}")
    number = int(value)
    if not low <= number <= high:
        raise Invalid(f"{name} must be from {low} to {high}, not {number}")
    return number


def offset_of(value: str | None) -> int:
    return whole_number("offset", value, 0, 0, MAX_OFFSET)


def limit_of(value: str | None) -> int:
    return whole_number("limit", value, MAX_LIMIT, 1, MAX_LIMIT)


def text_of(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > TEXT_LENGTH or "\x00" in value:
        raise Invalid(f"{name} must be at most {TEXT_LENGTH} characters, without NUL")
    return value


def flag_of(name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise Invalid(f"{name} must be true or false, not {value[:40]!r}")
    return value.lower() == "true"
