"""What /api/v1 accepts, in one place: the types of every path and query parameter and of
every request body field.

Numbers are bounded by what the databases store (PostgreSQL's ``integer`` is 32 bits,
SQLite's 64) and by what makes sense: durations are finite and at least long enough to be
honoured. Strings are bounded in length and carry no NUL, which PostgreSQL cannot store;
JSON strings with lone surrogates are already refused by pydantic. FastAPI checks these
before a route runs, and the problem table answers 422 with the field and the reason, so a
bad value never reaches a query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from dockyard.auth.jwt_tokens import MIN_LIFETIME_DAYS
from dockyard.auth.tokens import MAX_TOKEN_DAYS
from dockyard.tenancy.requests import MAX_GRANT_DAYS

MAX_ID = 2**31 - 1  # PostgreSQL's integer: every id column
MAX_BYTES = 2**53 - 1  # sizes and offsets: 8 PiB, and exact in every JSON reader
NAME_LENGTH = 255
TEXT_LENGTH = 10_000
DOCUMENT_LENGTH = 1 << 20  # a Dockerfile


def no_nul(value: str) -> str:
    """Refuse NUL (a field bounded by its own length limits)."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    return value


# Names, identifiers and short values: usernames, workspaces, roles, tags, platforms, hosts.
Name = Annotated[str, StringConstraints(max_length=NAME_LENGTH), AfterValidator(no_nul)]
# Free text, references, URLs and paths: descriptions, notes, image names, passwords.
Text = Annotated[str, StringConstraints(max_length=TEXT_LENGTH), AfterValidator(no_nul)]
# A glob of tag names (immutable tags, retention rules): a tag's length.
TagPattern = Annotated[str, StringConstraints(max_length=128), AfterValidator(no_nul)]
# A URL the server will call (a webhook's receiver).
URL_LENGTH = 2000
Url = Annotated[str, StringConstraints(max_length=URL_LENGTH), AfterValidator(no_nul)]
# A whole document sent as a string (a Dockerfile).
Document = Annotated[str, StringConstraints(max_length=DOCUMENT_LENGTH), AfterValidator(no_nul)]

# Lists of names in bodies and queries (scopes, regions, clusters).
Names = Annotated[list[Name], Field(max_length=100)]

# A row id in a path (access requests, tokens, notifications, build runs).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
# A row id as a query parameter (paging by id).
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only rows with an id below this.")]
# How many rows to skip.
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip.")]
# An index into a list, in a body.
Index = Annotated[int, Field(ge=0, le=MAX_ID)]
# A size in bytes (bodies), and a position in a stream of bytes (queries).
Bytes = Annotated[int, Field(ge=0, le=MAX_BYTES)]
ByteOffset = Annotated[int, Query(ge=0, le=MAX_BYTES, description="Bytes to skip.")]
# A moment as a query parameter: seconds since the epoch, finite, no later than the year 9999.
Moment = Annotated[
    float | None,
    Query(ge=0, le=253_402_300_799, allow_inf_nan=False, description="Seconds since 1970-01-01 UTC."),
]

_DAYS = "Days, a finite number; at least two minutes (a registry token lasts at least one)."
# How long a grant of access lasts.
GrantDays = Annotated[
    float, Field(ge=MIN_LIFETIME_DAYS, le=MAX_GRANT_DAYS, allow_inf_nan=False, description=_DAYS)
]
# How long a token lasts.
TokenDays = Annotated[
    float, Field(ge=MIN_LIFETIME_DAYS, le=MAX_TOKEN_DAYS, allow_inf_nan=False, description=_DAYS)
]
