"""Who may do what on a repository: one pure function over facts loaded in one place.

Roles, from least to most: reader (pull), developer (pull, push), maintainer (pull, push,
delete; also manages repositories and access requests), owner (also members, teams,
robots and settings of the workspace). A grant of ``pull`` gives pull; ``push`` gives
pull and push.

No existence leaks: for a subject without a role in the workspace, a private repository
yields exactly what a repository that does not exist yields (nothing), so every answer
built on :func:`decide` is the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PULL, PUSH, DELETE = "pull", "push", "delete"
ACTIONS = frozenset({PULL, PUSH, DELETE})
ROLES = ("reader", "developer", "maintainer", "owner")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "reader": frozenset({PULL}),
    "developer": frozenset({PULL, PUSH}),
    "maintainer": ACTIONS,
    "owner": ACTIONS,
}
GRANT_ACTIONS: dict[str, frozenset[str]] = {PULL: frozenset({PULL}), PUSH: frozenset({PULL, PUSH})}
TOKEN_SCOPES = frozenset({PULL, PUSH, DELETE, "api"})


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def highest(roles: list[str] | tuple[str, ...] | frozenset[str]) -> str | None:
    found = [role for role in roles if role in ROLES]
    return max(found, key=ROLES.index) if found else None


@dataclass(frozen=True)
class Subject:
    """An authenticated caller (or the anonymous one)."""

    kind: Literal["anonymous", "user", "robot"]
    id: int | None
    name: str
    is_admin: bool = False
    # A personal access token or robot token caps what its holder may do.
    scopes: frozenset[str] | None = None
    token_id: int | None = None
    expires_at: float | None = None  # of the token used, if any

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def may_use_api(self) -> bool:
        return self.scopes is None or "api" in self.scopes


ANONYMOUS = Subject("anonymous", None, "")


@dataclass(frozen=True)
class Facts:
    """What :func:`decide` needs about one subject and one repository name."""

    workspace_exists: bool
    repository_exists: bool
    public: bool = False
    workspace_roles: frozenset[str] = frozenset()  # membership, teams, robot permissions
    repository_roles: frozenset[str] = frozenset()  # team and robot permissions on the repository
    grants: tuple[tuple[str, float | None], ...] = field(default=())  # (action, expires_at), active


@dataclass(frozen=True)
class Decision:
    actions: frozenset[str]
    expires_at: float | None = None  # the earliest expiry of a grant that the actions rely on


def decide(subject: Subject, facts: Facts, now: float) -> Decision:
    """The actions ``subject`` may take on the repository described by ``facts``."""
    if subject.is_admin:
        allowed: frozenset[str] = ACTIONS
        return Decision(_cap(subject, allowed))
    allowed = frozenset()
    for role in facts.workspace_roles:
        allowed |= ROLE_ACTIONS.get(role, frozenset())
    if facts.repository_exists:
        for role in facts.repository_roles:
            allowed |= ROLE_ACTIONS.get(role, frozenset())
        if facts.public:
            allowed |= {PULL}
    steady = allowed
    expiry: float | None = None
    if facts.repository_exists and subject.kind == "user":
        for action, expires_at in facts.grants:
            if expires_at is not None and expires_at <= now:
                continue
            extra = GRANT_ACTIONS.get(action, frozenset()) - steady
            if not extra:
                continue
            allowed |= extra
            if expires_at is not None:
                expiry = expires_at if expiry is None else min(expiry, expires_at)
    return Decision(_cap(subject, allowed), expiry)


def _cap(subject: Subject, allowed: frozenset[str]) -> frozenset[str]:
    return allowed if subject.scopes is None else allowed & subject.scopes


def expand(actions: frozenset[str]) -> frozenset[str]:
    """Requested actions, with ``*`` meaning all of them and unknown ones dropped."""
    if "*" in actions:
        return ACTIONS
    return actions & ACTIONS
