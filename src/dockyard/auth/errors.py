"""Errors of the identity and access services. Each HTTP edge translates them once: the
registry into spec errors, the token endpoint into OAuth errors, the API into problems."""

from __future__ import annotations


class AccessError(Exception):
    """Base class; ``str(error)`` is a message fit for the user."""


class AuthenticationFailed(AccessError):
    """Unknown user, wrong password, or a revoked, expired or unknown token."""


class Throttled(AccessError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after) + 1} seconds")
        self.retry_after = retry_after


class Forbidden(AccessError):
    """Authenticated, but not allowed. Only used where existence is not a secret."""


class NotFound(AccessError):
    """Does not exist, or the caller may not know that it exists."""


class Conflict(AccessError):
    """A name is taken, or the object is in a state that forbids the change."""


class Invalid(AccessError):
    """Malformed input; the message says what is expected."""
