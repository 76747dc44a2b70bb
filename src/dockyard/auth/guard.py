"""Checks shared by the management services: look a workspace up, require a role on it.

Workspace names are not secret (users need them to ask for access), so a missing role is
``Forbidden``; repositories are, and their checks live in :mod:`dockyard.tenancy.repositories`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select

from dockyard.auth.errors import AuthenticationFailed
from dockyard.auth.facts import workspace_role
from dockyard.auth.policy import DELETE, Subject, role_at_least
from dockyard.auth.tables import workspaces
from dockyard.db.engine import Connection
from dockyard.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    kind: str
    description: str
    default_visibility: str
    personal_user_id: int | None
    created_at: float


async def find_workspace(conn: Connection, name: str) -> Workspace:
    row = (await conn.execute(select(workspaces).where(workspaces.c.name == name))).first()
    if row is None:
        raise NotFound(f"workspace {name!r} not found")
    return workspace_of(row)


def workspace_of(row: Row[Any]) -> Workspace:
    m = row._mapping
    return Workspace(
        id=m["id"],
        name=m["name"],
        kind=m["kind"],
        description=m["description"],
        default_visibility=m["default_visibility"],
        personal_user_id=m["personal_user_id"],
        created_at=m["created_at"],
    )


def require_user(actor: Subject) -> None:
    """Management needs a signed-in user (not anonymous, not a robot) whose token allows the API."""
    if actor.is_anonymous:
        raise AuthenticationFailed("sign in first")
    if actor.kind != "user":
        raise Forbidden("robot accounts may only pull and push")
    if not actor.may_use_api():
        raise Forbidden("this token is limited to the registry; create one with the 'api' scope")


def require_deleter(actor: Subject) -> None:
    """A deletion through the API needs what a /v2 delete needs: a signed-in user whose token,
    if it has scopes, has the 'delete' scope (as well as 'api')."""
    require_user(actor)
    if actor.scopes is not None and DELETE not in actor.scopes:
        raise Forbidden("this token may not delete; create one with the 'delete' scope")


async def require_role(conn: Connection, actor: Subject, workspace: Workspace, needed: str) -> str:
    """The actor's role on the workspace, if at least ``needed`` (admins count as owners)."""
    require_user(actor)
    role = await workspace_role(conn, actor, workspace.id)
    if not role_at_least(role, needed):
        raise Forbidden(f"this needs the {needed} role (or higher) in workspace {workspace.name!r}")
    assert role is not None
    return role
