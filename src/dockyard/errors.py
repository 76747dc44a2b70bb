"""The domain errors every service raises, whatever its feature. They carry no HTTP status: each
edge translates them once, in one table (problem+json in :mod:`dockyard.http.problems`, spec
errors in :mod:`dockyard.registry.http.errors`, OAuth errors at the token endpoint, messages in
the CLI). Errors that belong to one feature subclass these where a caller may treat them alike."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; ``str(error)`` is a message fit for the user."""


class Forbidden(DomainError):
    """Authenticated, but not allowed. Only used where existence is not a secret."""


class NotFound(DomainError):
    """Does not exist, or the caller may not know that it exists."""


class Conflict(DomainError):
    """A name is taken, or the object is in a state that forbids the change."""


class Contention(Conflict):
    """The database gave up on the change because a concurrent one held what it needed
    (PostgreSQL's deadlock or serialization failure): nothing was written, trying again works."""


class Invalid(DomainError):
    """Malformed input; the message says what is expected."""


class StillHolds(Conflict):
    """A container (a workspace) cannot go while it holds things; ``holdings`` names each one
    (``"repository genomics/samtools"``, ``"build definition genomics/tools"``)."""

    def __init__(self, message: str, holdings: list[str]) -> None:
        super().__init__(message)
        self.holdings = holdings


class UpstreamError(DomainError):
    """Another registry could not be used; ``reason`` is machine-readable (not_found,
    unauthorized, forbidden, rate_limited, unreachable, tls, upstream_error, invalid,
    refused) and ``members`` are extra facts for the problem document (``detail_kind``,
    ``profile``, ``retry_after``)."""

    def __init__(self, message: str, reason: str, **members: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.members = {key: value for key, value in members.items() if value is not None}


class PrivateUpstream(Conflict):
    """An image whose upstream needs credentials may only back a private catalog entry."""
