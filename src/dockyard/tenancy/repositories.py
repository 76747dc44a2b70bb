"""Repository access settings: visibility, repository-level permissions, and what a
subject may see. A repository the subject may not pull is reported as not found, exactly
like one that does not exist.

A repository's visibility is also the visibility of the catalog image of the same name and of
all its versions (one setting, however it is changed: here, or on the image). Layers above
hear each change in its transaction (:meth:`Repositories.on_visibility`: the catalog records
it in the image's history)."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from dockyard.auth import audit
from dockyard.auth.facts import allowed, load_facts, namespace_of
from dockyard.auth.guard import Workspace, find_workspace, require_role, require_user
from dockyard.auth.jwt_tokens import MIN_TTL
from dockyard.auth.policy import GRANT_ACTIONS, PULL, Subject, decide
from dockyard.auth.tables import permissions, repositories, repository_grants, teams, users
from dockyard.db.engine import Connection, Database
from dockyard.errors import Invalid, NotFound
from dockyard.tenancy.workspaces import check_role, check_visibility


@dataclass(frozen=True)
class RepositoryInfo:
    name: str
    workspace: str
    visibility: str
    created_at: float
    actions: list[str]  # what the caller may do


@dataclass(frozen=True)
class Grant:
    id: int
    username: str
    action: str
    expires_at: float | None
    request_id: int | None


@dataclass(frozen=True)
class RepositoryPermissions:
    teams: list[tuple[str, str]]  # (team, role)
    users: list[Grant]


def not_found(name: str) -> NotFound:
    return NotFound(f"repository {name!r} not found")


# Hears a visibility change in its transaction: (conn, actor, repository, before, after).
VisibilityListener = Callable[[Connection, Subject, str, str, str], Awaitable[None]]


class Repositories:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._visibility_listeners: list[VisibilityListener] = []

    def on_visibility(self, listener: VisibilityListener) -> None:
        """Call ``listener`` in the transaction of every visibility change."""
        self._visibility_listeners.append(listener)

    async def get(self, actor: Subject, name: str) -> RepositoryInfo:
        decision = await allowed(self.db, actor, name)
        if PULL not in decision.actions:
            raise not_found(name)
        async with self.db.read() as conn:
            row = (await conn.execute(select(repositories).where(repositories.c.name == name))).first()
        if row is None:
            raise not_found(name)
        m = row._mapping
        return RepositoryInfo(
            name, namespace_of(name), m["visibility"], m["created_at"], sorted(decision.actions)
        )

    async def visible(
        self, actor: Subject, workspace: str | None = None, limit: int = 100, last: str = ""
    ) -> list[RepositoryInfo]:
        """Repositories the actor may pull, in name order, ``limit`` after ``last``."""
        result: list[RepositoryInfo] = []
        stmt = select(repositories.c.name).where(repositories.c.name > last).order_by(repositories.c.name)
        if workspace is not None:
            stmt = stmt.where(repositories.c.name.startswith(workspace + "/", autoescape=True))
        offset = 0
        while len(result) < limit:
            async with self.db.read() as conn:
                names = [row[0] for row in await conn.execute(stmt.limit(500).offset(offset))]
            if not names:
                break
            offset += len(names)
            for name in names:
                try:
                    result.append(await self.get(actor, name))
                except NotFound:
                    continue
                if len(result) >= limit:
                    break
        return result

    async def set_visibility(
        self, actor: Subject, name: str, visibility: str, client_ip: str | None = None
    ) -> RepositoryInfo:
        """Make the repository (and the catalog image of its name) public or private
        (maintainers); audited with the value before and after, heard by the listeners."""
        check_visibility(visibility)
        async with self.db.write() as conn:
            ws, repo_id = await self._manageable(conn, actor, name)
            before = (
                await conn.execute(select(repositories.c.visibility).where(repositories.c.id == repo_id))
            ).scalar_one()
            await conn.execute(
                update(repositories).where(repositories.c.id == repo_id).values(visibility=visibility)
            )
            await audit.record(
                conn,
                actor,
                "repository.visibility",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"visibility": visibility, "before": before, "after": visibility},
            )
            if before != visibility:
                for listener in self._visibility_listeners:
                    await listener(conn, actor, name, before, visibility)
        return await self.get(actor, name)

    async def permissions(self, actor: Subject, name: str) -> RepositoryPermissions:
        async with self.db.read() as conn:
            _, repo_id = await self._manageable(conn, actor, name)
            team_rows = (
                await conn.execute(
                    select(teams.c.name, permissions.c.role)
                    .join(teams, teams.c.id == permissions.c.team_id)
                    .where(permissions.c.repository_id == repo_id)
                    .order_by(teams.c.name)
                )
            ).all()
            grant_rows = (
                await conn.execute(
                    select(
                        repository_grants.c.id,
                        users.c.username,
                        repository_grants.c.action,
                        repository_grants.c.expires_at,
                        repository_grants.c.request_id,
                    )
                    .join(users, users.c.id == repository_grants.c.user_id)
                    .where(
                        repository_grants.c.repository_id == repo_id, repository_grants.c.revoked_at.is_(None)
                    )
                    .order_by(users.c.username)
                )
            ).all()
        now = time.time()
        return RepositoryPermissions(
            teams=[(row[0], row[1]) for row in team_rows],
            users=[Grant(*row) for row in grant_rows if row[3] is None or row[3] > now],
        )

    async def set_team_role(
        self, actor: Subject, name: str, team: str, role: str | None, client_ip: str | None = None
    ) -> RepositoryPermissions:
        if role is not None:
            check_role(role)
            if role == "owner":
                raise Invalid("a team may hold reader, developer or maintainer on a repository")
        async with self.db.write() as conn:
            ws, repo_id = await self._manageable(conn, actor, name)
            row = (
                await conn.execute(
                    select(teams.c.id).where(teams.c.workspace_id == ws.id, teams.c.name == team)
                )
            ).first()
            if row is None:
                raise NotFound(f"workspace {ws.name!r} has no team {team!r}")
            await conn.execute(
                delete(permissions).where(
                    permissions.c.team_id == row[0], permissions.c.repository_id == repo_id
                )
            )
            if role is not None:
                await conn.execute(
                    permissions.insert().values(
                        workspace_id=ws.id,
                        team_id=row[0],
                        repository_id=repo_id,
                        role=role,
                        created_at=time.time(),
                    )
                )
            await audit.record(
                conn,
                actor,
                "repository.team_role",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"team": team, "role": role},
            )
        return await self.permissions(actor, name)

    async def grant_user(
        self,
        actor: Subject,
        name: str,
        username: str,
        action: str,
        expires_at: float | None,
        request_id: int | None = None,
        client_ip: str | None = None,
    ) -> Grant:
        """Give one user pull (or pull and push) on the repository, until ``expires_at`` if set.
        Replaces that user's earlier direct grants on it."""
        async with self.db.write() as conn:
            ws, repo_id = await self._manageable(conn, actor, name)
            return await grant_in(
                conn, actor, ws, repo_id, name, username, action, expires_at, request_id, client_ip
            )

    async def revoke_user(
        self, actor: Subject, name: str, username: str, client_ip: str | None = None
    ) -> None:
        async with self.db.write() as conn:
            ws, repo_id = await self._manageable(conn, actor, name)
            user = (await conn.execute(select(users.c.id).where(users.c.username == username))).first()
            if user is None:
                raise NotFound(f"user {username!r} not found")
            result = await conn.execute(
                update(repository_grants)
                .where(
                    repository_grants.c.repository_id == repo_id,
                    repository_grants.c.user_id == user[0],
                    repository_grants.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )
            if not result.rowcount:
                raise NotFound(f"{username!r} holds no grant on {name!r}")
            await audit.record(
                conn,
                actor,
                "grant.revoke",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"user": username},
            )

    async def _manageable(self, conn: Connection, actor: Subject, name: str) -> tuple[Workspace, int]:
        """Workspace and id of a repository the actor maintains; others see 'not found'."""
        require_user(actor)
        try:
            ws = await find_workspace(conn, namespace_of(name))
        except NotFound:
            raise not_found(name) from None
        row = (
            await conn.execute(
                select(repositories.c.id).where(
                    repositories.c.name == name, repositories.c.workspace_id == ws.id
                )
            )
        ).first()
        now = time.time()
        decision = decide(actor, await load_facts(conn, actor, name, now), now)
        if row is None or PULL not in decision.actions:
            raise not_found(name)
        await require_role(conn, actor, ws, "maintainer")
        return ws, int(row[0])


async def grant_in(
    conn: Connection,
    actor: Subject,
    ws: Workspace,
    repo_id: int,
    name: str,
    username: str,
    action: str,
    expires_at: float | None,
    request_id: int | None,
    client_ip: str | None,
) -> Grant:
    if action not in GRANT_ACTIONS:
        raise Invalid("a grant gives 'pull' or 'push' (push includes pull)")
    if expires_at is not None and not math.isfinite(expires_at):
        raise Invalid("the grant's expiry must be a time; omit it for a permanent grant")
    if expires_at is not None and expires_at < time.time() + MIN_TTL:
        # The token server leaves such a grant out of every token: it would never be honoured.
        raise Invalid(f"the grant must last more than {MIN_TTL} seconds")
    user = (await conn.execute(select(users.c.id).where(users.c.username == username))).first()
    if user is None:
        raise NotFound(f"user {username!r} not found")
    now = time.time()
    await conn.execute(
        update(repository_grants)
        .where(
            repository_grants.c.repository_id == repo_id,
            repository_grants.c.user_id == user[0],
            repository_grants.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    grant_id = (
        await conn.execute(
            repository_grants.insert()
            .values(
                repository_id=repo_id,
                user_id=user[0],
                action=action,
                expires_at=expires_at,
                granted_by=actor.id,
                request_id=request_id,
                created_at=now,
            )
            .returning(repository_grants.c.id)
        )
    ).scalar_one()
    await audit.record(
        conn,
        actor,
        "grant.create",
        workspace_id=ws.id,
        target=name,
        client_ip=client_ip,
        detail={"user": username, "action": action, "expires_at": expires_at, "request_id": request_id},
    )
    return Grant(grant_id, username, action, expires_at, request_id)
