"""Errors of identity: who the caller is. The general refusals (not found, forbidden, conflict,
invalid) are :mod:`dockyard.errors`; each HTTP edge translates both once (the registry into spec
errors, the token endpoint into OAuth errors, the API into problems).

The registry's door (:class:`~dockyard.auth.base.Authorizer`) refuses with a
:class:`Challenge`: what the client must do to be let in. The /v2 edge writes it as the
``WWW-Authenticate`` header, so no header is built here."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth.base import Access
from dockyard.errors import DomainError, Forbidden


@dataclass(frozen=True)
class Challenge:
    """The parameters of a ``WWW-Authenticate`` challenge (RFC 6750, Docker token spec)."""

    scheme: str  # "Basic" or "Bearer"
    realm: str
    service: str | None = None  # the token service (Bearer)
    accesses: tuple[Access, ...] = ()  # what the request asks for: the token's scope (Bearer)
    error: str | None = None  # "invalid_token" or "insufficient_scope" (RFC 6750 section 3.1)

    @property
    def scope(self) -> str:
        """The accesses as the token spec's ``scope`` (space-separated ``type:name:actions``)."""
        return " ".join(access.scope() for access in self.accesses)


class AuthenticationFailed(DomainError):
    """Unknown user, wrong password, or a revoked, expired or unknown token. At the registry's
    door also: no credentials, or a token without the access asked for; ``challenge`` says how
    to get in."""

    def __init__(self, message: str, challenge: Challenge | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge


class InsufficientScope(Forbidden):
    """A valid token of a signed-in subject that lacks an access the subject holds (it was
    fetched for a narrower scope): a new token for ``challenge``'s scope would do."""

    def __init__(self, message: str, challenge: Challenge) -> None:
        super().__init__(message)
        self.challenge = challenge


class Throttled(DomainError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after) + 1} seconds")
        self.retry_after = retry_after
