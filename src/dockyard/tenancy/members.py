"""Members and teams of a workspace as the workspace service shows them, and the lookups its
membership changes share (:mod:`.workspaces`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from dockyard.auth.guard import Workspace
from dockyard.auth.tables import memberships, permissions, repositories, team_members, teams, users
from dockyard.db.engine import Connection
from dockyard.errors import Conflict, NotFound


@dataclass(frozen=True)
class Member:
    username: str
    role: str
    since: float


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    description: str
    members: list[str]
    permissions: list[tuple[str | None, str]]  # (repository or None for the workspace, role)


async def find_user_id(conn: Connection, username: str) -> int:
    row = (await conn.execute(select(users.c.id).where(users.c.username == username))).first()
    if row is None:
        raise NotFound(f"user {username!r} not found")
    return int(row[0])


async def keep_an_owner(conn: Connection, workspace_id: int) -> None:
    count = (
        await conn.execute(
            select(func.count()).where(
                memberships.c.workspace_id == workspace_id, memberships.c.role == "owner"
            )
        )
    ).scalar_one()
    if count <= 1:
        raise Conflict("a workspace needs at least one owner; make someone else owner first")


async def find_team_id(conn: Connection, ws: Workspace, team: str) -> int:
    row = (
        await conn.execute(select(teams.c.id).where(teams.c.workspace_id == ws.id, teams.c.name == team))
    ).first()
    if row is None:
        raise NotFound(f"workspace {ws.name!r} has no team {team!r}")
    return int(row[0])


async def team_view(conn: Connection, team_id: int, name: str, description: str) -> Team:
    members = (
        await conn.execute(
            select(users.c.username)
            .join(team_members, team_members.c.user_id == users.c.id)
            .where(team_members.c.team_id == team_id)
            .order_by(users.c.username)
        )
    ).all()
    perms = (
        await conn.execute(
            select(repositories.c.name, permissions.c.role)
            .select_from(
                permissions.outerjoin(repositories, repositories.c.id == permissions.c.repository_id)
            )
            .where(permissions.c.team_id == team_id)
        )
    ).all()
    return Team(team_id, name, description, [m[0] for m in members], [(p[0], p[1]) for p in perms])
