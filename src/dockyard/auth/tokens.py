"""Personal access tokens, robot accounts and robot tokens.

A token's secret is shown once, when it is made; only its SHA-256 is stored. ``scopes``
cap what the token may do, whatever its owner's roles: ``pull``, ``push``, ``delete``
(registry actions) and ``api`` (the management API; robots never get it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, select, update

from dockyard.auth import audit, bearer
from dockyard.auth.accounts import check_name
from dockyard.auth.guard import Workspace, find_workspace, require_role, require_user
from dockyard.auth.jwt_tokens import MIN_LIFETIME_DAYS
from dockyard.auth.policy import TOKEN_SCOPES, Subject
from dockyard.auth.tables import access_tokens, permissions, refresh_tokens, repositories, robots
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound

ROBOT_ROLES = ("reader", "developer", "maintainer")
MAX_TOKEN_DAYS = 3650


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked: bool


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    secret: str  # shown once


@dataclass(frozen=True)
class Robot:
    id: int
    workspace: str
    name: str
    login: str  # workspace+name, the username for docker login
    description: str
    disabled: bool
    permissions: list[tuple[str | None, str]]  # (repository or None for the workspace, role)
    created_at: float


def parse_scopes(scopes: list[str], robot: bool) -> str:
    wanted = {s.strip() for s in scopes if s.strip()}
    unknown = wanted - TOKEN_SCOPES
    if unknown or not wanted:
        raise Invalid(
            f"token scopes must be among {', '.join(sorted(TOKEN_SCOPES))}; got {sorted(unknown) or 'none'}"
        )
    if robot and "api" in wanted:
        raise Invalid("robot tokens are for the registry; they cannot have the 'api' scope")
    return ",".join(sorted(wanted))


def _expiry(expires_in_days: float | None) -> float | None:
    if expires_in_days is None:
        return None
    if not MIN_LIFETIME_DAYS <= expires_in_days <= MAX_TOKEN_DAYS:  # NaN is neither
        raise Invalid(
            f"expires_in_days must be between {MIN_LIFETIME_DAYS:.4f} (two minutes) and {MAX_TOKEN_DAYS}"
        )
    return time.time() + expires_in_days * 86400


def _info(row: Row[Any]) -> TokenInfo:
    m = row._mapping
    return TokenInfo(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        scopes=m["scopes"].split(","),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        last_used_at=m["last_used_at"],
        revoked=m["revoked_at"] is not None,
    )


async def _insert_token(
    conn: Connection,
    *,
    user_id: int | None,
    robot_id: int | None,
    name: str,
    scopes: str,
    expires_at: float | None,
) -> NewToken:
    if not name.strip() or len(name) > 100:
        raise Invalid("a token needs a name of 1 to 100 characters (say where it is used)")
    secret = bearer.new_secret(bearer.ACCESS_PREFIX)
    token_id = (
        await conn.execute(
            access_tokens.insert()
            .values(
                user_id=user_id,
                robot_id=robot_id,
                name=name,
                prefix=bearer.display_prefix(secret),
                token_hash=bearer.digest(secret),
                scopes=scopes,
                expires_at=expires_at,
                created_at=time.time(),
            )
            .returning(access_tokens.c.id)
        )
    ).scalar_one()
    row = (await conn.execute(select(access_tokens).where(access_tokens.c.id == token_id))).one()
    return NewToken(_info(row), secret)


async def _revoke(conn: Connection, token_id: int) -> None:
    now = time.time()
    await conn.execute(
        update(access_tokens)
        .where(access_tokens.c.id == token_id, access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.access_token_id == token_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


class Tokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- personal access tokens -----------------------------------------------------

    async def create_personal(
        self,
        actor: Subject,
        name: str,
        scopes: list[str],
        expires_in_days: float | None = None,
        client_ip: str | None = None,
    ) -> NewToken:
        require_user(actor)
        if actor.token_id is not None and actor.scopes is not None and not set(scopes) <= actor.scopes:
            raise Forbidden("a token cannot create a token with more scopes than its own")
        scope_text = parse_scopes(scopes, robot=False)
        expires_at = _expiry(expires_in_days)
        if actor.expires_at is not None:
            expires_at = actor.expires_at if expires_at is None else min(expires_at, actor.expires_at)
        async with self.db.write() as conn:
            token = await _insert_token(
                conn, user_id=actor.id, robot_id=None, name=name, scopes=scope_text, expires_at=expires_at
            )
            await audit.record(
                conn,
                actor,
                "token.create",
                target=f"{actor.name}:{name}",
                client_ip=client_ip,
                detail={"scopes": scope_text, "token_id": token.info.id},
            )
        return token

    async def list_personal(self, actor: Subject) -> list[TokenInfo]:
        require_user(actor)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(access_tokens)
                    .where(access_tokens.c.user_id == actor.id)
                    .order_by(access_tokens.c.id)
                )
            ).all()
        return [_info(row) for row in rows]

    async def revoke_personal(self, actor: Subject, token_id: int, client_ip: str | None = None) -> None:
        require_user(actor)
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(access_tokens.c.name).where(
                        access_tokens.c.id == token_id, access_tokens.c.user_id == actor.id
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"you have no token {token_id}")
            await _revoke(conn, token_id)
            await audit.record(
                conn,
                actor,
                "token.revoke",
                target=f"{actor.name}:{row[0]}",
                client_ip=client_ip,
                detail={"token_id": token_id},
            )

    # --- robots -------------------------------------------------------------------

    async def create_robot(
        self, actor: Subject, workspace: str, name: str, description: str = "", client_ip: str | None = None
    ) -> Robot:
        check_name(name, "robot name")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "owner")
            # One statement, so two requests creating the same robot cannot both pass a check:
            # the loser's insert does nothing and it gets the 409.
            robot_id = (
                await conn.execute(
                    self.db.insert(robots)
                    .values(
                        workspace_id=ws.id,
                        name=name,
                        description=description,
                        created_at=time.time(),
                        created_by=actor.id,
                    )
                    .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
                    .returning(robots.c.id)
                )
            ).scalar_one_or_none()
            if robot_id is None:
                raise Conflict(f"workspace {workspace!r} already has a robot {name!r}")
            await audit.record(
                conn,
                actor,
                "robot.create",
                workspace_id=ws.id,
                target=f"{workspace}+{name}",
                client_ip=client_ip,
            )
            return await _robot(conn, ws, robot_id)

    async def robots(self, actor: Subject, workspace: str) -> list[Robot]:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "maintainer")
            ids = (
                await conn.execute(
                    select(robots.c.id).where(robots.c.workspace_id == ws.id).order_by(robots.c.name)
                )
            ).all()
            return [await _robot(conn, ws, row[0]) for row in ids]

    async def get_robot(self, actor: Subject, workspace: str, name: str) -> Robot:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "maintainer")
            return await _robot(conn, ws, await _robot_id(conn, ws, name))

    async def update_robot(
        self, actor: Subject, workspace: str, name: str, *, disabled: bool, client_ip: str | None = None
    ) -> Robot:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "owner")
            robot_id = await _robot_id(conn, ws, name)
            await conn.execute(
                update(robots)
                .where(robots.c.id == robot_id)
                .values(disabled_at=time.time() if disabled else None)
            )
            await audit.record(
                conn,
                actor,
                "robot.disable" if disabled else "robot.enable",
                workspace_id=ws.id,
                target=f"{workspace}+{name}",
                client_ip=client_ip,
            )
            return await _robot(conn, ws, robot_id)

    async def delete_robot(
        self, actor: Subject, workspace: str, name: str, client_ip: str | None = None
    ) -> None:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "owner")
            robot_id = await _robot_id(conn, ws, name)
            await conn.execute(delete(robots).where(robots.c.id == robot_id))
            await audit.record(
                conn,
                actor,
                "robot.delete",
                workspace_id=ws.id,
                target=f"{workspace}+{name}",
                client_ip=client_ip,
            )

    async def set_robot_permission(
        self,
        actor: Subject,
        workspace: str,
        name: str,
        repository: str | None,
        role: str | None,
        client_ip: str | None = None,
    ) -> Robot:
        """The robot's role on the whole workspace (``repository=None``) or one repository
        of it; ``role=None`` removes it."""
        if role is not None and role not in ROBOT_ROLES:
            raise Invalid(f"a robot may hold {', '.join(ROBOT_ROLES)}; not {role!r}")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "owner")
            robot_id = await _robot_id(conn, ws, name)
            repository_id = None if repository is None else await _repository_in(conn, ws, repository)
            where = [permissions.c.robot_id == robot_id]
            where.append(
                permissions.c.repository_id.is_(None)
                if repository_id is None
                else permissions.c.repository_id == repository_id
            )
            await conn.execute(delete(permissions).where(*where))
            if role is not None:
                await conn.execute(
                    permissions.insert().values(
                        workspace_id=ws.id,
                        robot_id=robot_id,
                        repository_id=repository_id,
                        role=role,
                        created_at=time.time(),
                    )
                )
            await audit.record(
                conn,
                actor,
                "robot.permission",
                workspace_id=ws.id,
                target=f"{workspace}+{name}",
                client_ip=client_ip,
                detail={"repository": repository, "role": role},
            )
            return await _robot(conn, ws, robot_id)

    async def create_robot_token(
        self,
        actor: Subject,
        workspace: str,
        name: str,
        token_name: str,
        scopes: list[str],
        expires_in_days: float | None = None,
        client_ip: str | None = None,
    ) -> NewToken:
        scope_text = parse_scopes(scopes, robot=True)
        expires_at = _expiry(expires_in_days)
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "owner")
            robot_id = await _robot_id(conn, ws, name)
            token = await _insert_token(
                conn,
                user_id=None,
                robot_id=robot_id,
                name=token_name,
                scopes=scope_text,
                expires_at=expires_at,
            )
            await audit.record(
                conn,
                actor,
                "robot.token.create",
                workspace_id=ws.id,
                target=f"{workspace}+{name}:{token_name}",
                client_ip=client_ip,
                detail={"scopes": scope_text, "token_id": token.info.id},
            )
        return token

    async def robot_tokens(self, actor: Subject, workspace: str, name: str) -> list[TokenInfo]:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "maintainer")
            robot_id = await _robot_id(conn, ws, name)
            rows = (
                await conn.execute(
                    select(access_tokens)
                    .where(access_tokens.c.robot_id == robot_id)
                    .order_by(access_tokens.c.id)
                )
            ).all()
        return [_info(row) for row in rows]

    async def revoke_robot_token(
        self, actor: Subject, workspace: str, name: str, token_id: int, client_ip: str | None = None
    ) -> None:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "owner")
            robot_id = await _robot_id(conn, ws, name)
            row = (
                await conn.execute(
                    select(access_tokens.c.id).where(
                        access_tokens.c.id == token_id, access_tokens.c.robot_id == robot_id
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"robot {workspace}+{name} has no token {token_id}")
            await _revoke(conn, token_id)
            await audit.record(
                conn,
                actor,
                "robot.token.revoke",
                workspace_id=ws.id,
                target=f"{workspace}+{name}",
                client_ip=client_ip,
                detail={"token_id": token_id},
            )


async def _robot_id(conn: Connection, ws: Workspace, name: str) -> int:
    row = (
        await conn.execute(select(robots.c.id).where(robots.c.workspace_id == ws.id, robots.c.name == name))
    ).first()
    if row is None:
        raise NotFound(f"workspace {ws.name!r} has no robot {name!r}")
    return int(row[0])


async def _repository_in(conn: Connection, ws: Workspace, repository: str) -> int:
    row = (
        await conn.execute(
            select(repositories.c.id).where(
                repositories.c.name == repository, repositories.c.workspace_id == ws.id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"workspace {ws.name!r} has no repository {repository!r}")
    return int(row[0])


async def _robot(conn: Connection, ws: Workspace, robot_id: int) -> Robot:
    row = (await conn.execute(select(robots).where(robots.c.id == robot_id))).one()
    m = row._mapping
    perms = (
        await conn.execute(
            select(repositories.c.name, permissions.c.role)
            .select_from(
                permissions.outerjoin(repositories, repositories.c.id == permissions.c.repository_id)
            )
            .where(permissions.c.robot_id == robot_id)
        )
    ).all()
    return Robot(
        id=robot_id,
        workspace=ws.name,
        name=m["name"],
        login=f"{ws.name}+{m['name']}",
        description=m["description"],
        disabled=m["disabled_at"] is not None,
        permissions=[(p[0], p[1]) for p in perms],
        created_at=m["created_at"],
    )
