"""Load the :class:`~dockyard.auth.policy.Facts` for one subject and repository name, and
the subject's role in a workspace. The only module that reads permission tables."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, Select, and_, false, literal, or_, select, true, union_all

from dockyard.auth.policy import PULL, Decision, Facts, Subject, decide, highest
from dockyard.auth.tables import (
    memberships,
    permissions,
    repositories,
    repository_grants,
    robots,
    team_members,
    workspaces,
)
from dockyard.db.engine import Connection, Database


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


async def workspace_roles(conn: Connection, subject: Subject, workspace_id: int) -> list[str]:
    """Roles held on the whole workspace: membership and teams (users), permissions (robots)."""
    roles: list[str] = []
    if subject.kind == "user":
        row = (
            await conn.execute(
                select(memberships.c.role).where(
                    memberships.c.workspace_id == workspace_id, memberships.c.user_id == subject.id
                )
            )
        ).first()
        if row is not None:
            roles.append(row[0])
        stmt = (
            select(permissions.c.role)
            .join(team_members, team_members.c.team_id == permissions.c.team_id)
            .where(
                team_members.c.user_id == subject.id,
                permissions.c.workspace_id == workspace_id,
                permissions.c.repository_id.is_(None),
            )
        )
        roles.extend(row[0] for row in await conn.execute(stmt))
    elif subject.kind == "robot":
        stmt = select(permissions.c.role).where(
            permissions.c.robot_id == subject.id,
            permissions.c.workspace_id == workspace_id,
            permissions.c.repository_id.is_(None),
        )
        roles.extend(row[0] for row in await conn.execute(stmt))
    return roles


async def workspace_role(conn: Connection, subject: Subject, workspace_id: int) -> str | None:
    """The subject's highest role on the whole workspace; admins count as owners."""
    if subject.is_admin:
        return "owner"
    return highest(await workspace_roles(conn, subject, workspace_id))


async def repository_roles(
    conn: Connection, subject: Subject, workspace_id: int, repository_id: int
) -> list[str]:
    if subject.kind == "user":
        holder = and_(team_members.c.user_id == subject.id)
        stmt = (
            select(permissions.c.role)
            .join(team_members, team_members.c.team_id == permissions.c.team_id)
            .where(holder, permissions.c.repository_id == repository_id)
        )
    elif subject.kind == "robot":
        stmt = select(permissions.c.role).where(
            permissions.c.robot_id == subject.id, permissions.c.repository_id == repository_id
        )
    else:
        return []
    return [row[0] for row in await conn.execute(stmt.where(permissions.c.workspace_id == workspace_id))]


async def load_facts(conn: Connection, subject: Subject, repository: str, now: float) -> Facts:
    """Two to four indexed lookups. The same queries run whether or not the repository
    exists, so their timing does not tell the two apart either."""
    ws = (
        await conn.execute(select(workspaces.c.id).where(workspaces.c.name == namespace_of(repository)))
    ).first()
    repo = (
        await conn.execute(
            select(repositories.c.id, repositories.c.visibility).where(repositories.c.name == repository)
        )
    ).first()
    if ws is None:
        return Facts(workspace_exists=False, repository_exists=False)
    workspace_id = int(ws[0])
    if subject.kind == "robot" and not await _robot_in(conn, subject, workspace_id):
        # No role outside its own workspace, but public repositories are public to robots too.
        return Facts(
            workspace_exists=True,
            repository_exists=repo is not None,
            public=repo is not None and repo[1] == "public",
        )
    ws_roles = frozenset(await workspace_roles(conn, subject, workspace_id))
    if repo is None:
        return Facts(workspace_exists=True, repository_exists=False, workspace_roles=ws_roles)
    repository_id = int(repo[0])
    repo_roles = frozenset(await repository_roles(conn, subject, workspace_id, repository_id))
    grants: tuple[tuple[str, float | None], ...] = ()
    if subject.kind == "user":
        stmt = select(repository_grants.c.action, repository_grants.c.expires_at).where(
            repository_grants.c.user_id == subject.id,
            repository_grants.c.repository_id == repository_id,
            repository_grants.c.revoked_at.is_(None),
            or_(repository_grants.c.expires_at.is_(None), repository_grants.c.expires_at > now),
        )
        grants = tuple((row[0], row[1]) for row in await conn.execute(stmt))
    return Facts(
        workspace_exists=True,
        repository_exists=True,
        public=repo[1] == "public",
        workspace_roles=ws_roles,
        repository_roles=repo_roles,
        grants=grants,
    )


async def _robot_in(conn: Connection, subject: Subject, workspace_id: int) -> bool:
    row = (
        await conn.execute(
            select(robots.c.id).where(robots.c.id == subject.id, robots.c.workspace_id == workspace_id)
        )
    ).first()
    return row is not None


async def allowed(db: Database, subject: Subject, repository: str, now: float | None = None) -> Decision:
    moment = time.time() if now is None else now
    async with db.read() as conn:
        facts = await load_facts(conn, subject, repository, moment)
    return decide(subject, facts, moment)


def workspace_role_rows(subject: Subject) -> Select[int, str]:
    """``(workspace_id, role)`` for every role the subject holds on a whole workspace (the
    rows :func:`workspace_roles` reads one workspace at a time)."""
    if subject.kind == "user":
        member = select(memberships.c.workspace_id, memberships.c.role).where(
            memberships.c.user_id == subject.id
        )
        team = (
            select(permissions.c.workspace_id, permissions.c.role)
            .join(team_members, team_members.c.team_id == permissions.c.team_id)
            .where(team_members.c.user_id == subject.id, permissions.c.repository_id.is_(None))
        )
        rows = union_all(member, team).subquery()
        return select(rows.c.workspace_id, rows.c.role)
    if subject.kind == "robot":
        return select(permissions.c.workspace_id, permissions.c.role).where(
            permissions.c.robot_id == subject.id,
            permissions.c.repository_id.is_(None),
            permissions.c.workspace_id
            == select(robots.c.workspace_id).where(robots.c.id == subject.id).scalar_subquery(),
        )
    return select(literal(0).label("workspace_id"), literal("").label("role")).where(false())


def pullable(subject: Subject, now: float) -> ColumnElement[bool]:
    """A condition on ``repositories`` rows: those the subject may pull (what :func:`decide`
    allows for each, as one query: every role includes pull, so any role will do)."""
    if subject.scopes is not None and PULL not in subject.scopes:
        return false()
    if subject.is_admin:
        return true()
    public = repositories.c.visibility == "public"
    ws_role = repositories.c.workspace_id.in_(select(workspace_role_rows(subject).subquery().c.workspace_id))
    if subject.kind == "user":
        team_repo = (
            select(permissions.c.repository_id)
            .join(team_members, team_members.c.team_id == permissions.c.team_id)
            .where(team_members.c.user_id == subject.id, permissions.c.repository_id.is_not(None))
        )
        granted = select(repository_grants.c.repository_id).where(
            repository_grants.c.user_id == subject.id,
            repository_grants.c.revoked_at.is_(None),
            or_(repository_grants.c.expires_at.is_(None), repository_grants.c.expires_at > now),
        )
        return or_(public, ws_role, repositories.c.id.in_(team_repo), repositories.c.id.in_(granted))
    if subject.kind == "robot":
        home = select(robots.c.workspace_id).where(robots.c.id == subject.id).scalar_subquery()
        robot_repo = select(permissions.c.repository_id).where(
            permissions.c.robot_id == subject.id, permissions.c.repository_id.is_not(None)
        )
        return or_(
            public, ws_role, and_(repositories.c.workspace_id == home, repositories.c.id.in_(robot_repo))
        )
    return public
