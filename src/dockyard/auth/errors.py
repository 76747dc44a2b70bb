"""Errors of identity: who the caller is. The general refusals (not found, forbidden, conflict,
invalid) are :mod:`dockyard.errors`; each HTTP edge translates both once (the registry into spec
errors, the token endpoint into OAuth errors, the API into problems)."""

from __future__ import annotations

from dockyard.errors import DomainError


class AuthenticationFailed(DomainError):
    """Unknown user, wrong password, or a revoked, expired or unknown token."""


class Throttled(DomainError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after) + 1} seconds")
        self.retry_after = retry_after
