"""What the token endpoint grants: for each requested scope, the intersection of what
was asked and what the subject may do (an empty action list, never an error, when that
is nothing; identical for a private repository and one that does not exist)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from dockyard.auth.facts import load_facts
from dockyard.auth.grant_cache import GrantCache
from dockyard.auth.jwt_tokens import MIN_TTL, Grant
from dockyard.auth.policy import Subject, decide, expand
from dockyard.db.engine import Database
from dockyard.oci.errors import InvalidName
from dockyard.oci.names import validate_hosted_name

MAX_SCOPES = 32


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]


def parse_scopes(values: list[str]) -> list[Scope]:
    """``type:name:actions`` items from repeated and space-separated parameters. The name
    may hold one ``:`` (``host:port/repo``). Malformed items are dropped."""
    scopes: list[Scope] = []
    for value in values:
        for item in value.split():
            kind, sep, rest = item.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not (sep and sep2 and name):
                continue
            scopes.append(Scope(kind, name, frozenset(a for a in actions.split(",") if a)))
            if len(scopes) >= MAX_SCOPES:
                return scopes
    return scopes


class TokenServer:
    def __init__(self, db: Database, cache: GrantCache | None = None) -> None:
        self.db = db
        self.cache = cache

    async def grants(self, subject: Subject, scopes: list[Scope]) -> tuple[list[Grant], float | None]:
        """The grants for ``scopes`` and the earliest expiry of an access grant they rely on."""
        now = time.time()
        grants: list[Grant] = []
        cap: float | None = subject.expires_at
        for scope in scopes:
            if scope.type == "registry":
                # Everyone may list the catalog: it shows each caller what they may pull.
                if scope.name == "catalog" and "*" in scope.actions:
                    grants.append(Grant("registry", "catalog", frozenset({"*"})))
                else:
                    grants.append(Grant(scope.type, scope.name, frozenset()))
                continue
            if scope.type != "repository":
                continue
            wanted = expand(scope.actions)
            try:
                validate_hosted_name(scope.name)
            except InvalidName:
                grants.append(Grant("repository", scope.name, frozenset()))
                continue
            async with self.db.read() as conn:
                facts = await load_facts(conn, subject, scope.name, now)
            decision = decide(subject, facts, now)
            if decision.expires_at is not None and decision.expires_at < now + MIN_TTL:
                # A grant about to end: leave out what only it gives, rather than outlive it.
                decision = decide(subject, facts, now + MIN_TTL)
            actions = decision.actions & wanted
            if decision.expires_at is not None and actions:
                cap = decision.expires_at if cap is None else min(cap, decision.expires_at)
            grants.append(Grant("repository", scope.name, actions))
        return grants, cap
