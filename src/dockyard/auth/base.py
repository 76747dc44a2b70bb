"""The Authorizer Protocol: the one place the registry asks "may this caller do this?".

A scope follows the Docker token spec: ``repository:<name>:<actions>`` with actions
``pull``, ``push``, ``delete``; ``registry:catalog:*`` for the catalog; an empty list of
accesses asks only "who is this?" (``GET /v2/``).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement


@dataclass(frozen=True)
class Access:
    type: str  # "repository" or "registry"
    name: str
    actions: frozenset[str]

    @classmethod
    def repository(cls, name: str, *actions: str) -> Access:
        return cls("repository", name, frozenset(actions))

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


CATALOG = Access("registry", "catalog", frozenset({"*"}))


@dataclass(frozen=True)
class Caller:
    """What the HTTP edge knows about the caller."""

    authorization: str | None  # the Authorization header, if any
    client_host: str | None  # peer address
    host: str | None = None  # the Host header, for the token realm
    scheme: str = "http"

    @property
    def is_loopback(self) -> bool:
        return _is_loopback(self.client_host)


@functools.lru_cache(maxsize=4096)
def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Principal:
    name: str  # "anonymous" for anonymous access
    is_admin: bool = False
    kind: str = "anonymous"  # anonymous, user, robot, or admin (settings-defined admin)
    id: int | None = None
    scopes: frozenset[str] | None = None  # the cap of the access token used, if any


class Authorizer(Protocol):
    async def authorize(self, caller: Caller, accesses: list[Access]) -> Principal:
        """The principal if every access is allowed.

        Raises :class:`~dockyard.auth.errors.AuthenticationFailed` with a ``challenge`` when
        credentials are missing, wrong or do not suffice (a new token might),
        :class:`~dockyard.auth.errors.InsufficientScope` when a token is narrower than what its
        subject may do, and :class:`~dockyard.auth.errors.Throttled` after too many failed logins.
        """
        ...

    def catalog_scope(self, principal: Principal) -> ColumnElement[bool]:
        """A condition on ``repositories`` rows: the ones ``/v2/_catalog`` lists to ``principal``."""
        ...
