"""Workspaces (organisations and personal namespaces), their members and teams.

Who may do what: any signed-in user may create an organisation and becomes its owner;
members see the member and team lists; owners change members, teams and settings, and
delete an empty workspace. Admins may do everything.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, or_, select, update

from dockyard.auth import audit
from dockyard.auth.accounts import _name_taken, check_name
from dockyard.auth.facts import workspace_role, workspace_role_rows
from dockyard.auth.guard import (
    Workspace,
    find_workspace,
    require_deleter,
    require_role,
    require_user,
    workspace_of,
)
from dockyard.auth.policy import ROLES, Subject, highest
from dockyard.auth.tables import (
    memberships,
    permissions,
    repositories,
    team_members,
    teams,
    users,
    workspaces,
)
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Invalid, NotFound, StillHolds
from dockyard.tenancy.members import Member, Team, find_team_id, find_user_id, keep_an_owner, team_view

VISIBILITIES = ("private", "public")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; use one of {', '.join(ROLES)}")


def check_visibility(visibility: str) -> None:
    if visibility not in VISIBILITIES:
        raise Invalid(f"unknown visibility {visibility!r}; use 'private' or 'public'")


# What a feature above this package still keeps in a workspace, one line each (wired by app).
Holdings = Callable[[Connection, int], Awaitable[list[str]]]
# Inside a workspace deletion's transaction, before its rows go, a feature above reads what it
# keeps outside the database (build logs and contexts in storage) and returns what removes it
# once the deletion committed (wired by app).
Cleanup = Callable[[Connection, int], Awaitable[Callable[[], Awaitable[None]]]]


class Workspaces:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._holdings: list[Holdings] = []
        self._after_delete: list[Callable[[list[str]], Awaitable[None]]] = []
        self._cleanups: list[Cleanup] = []

    def cleanup_from(self, cleanup: Cleanup) -> None:
        """Also remove, once a (forced) deletion committed, what ``cleanup`` keeps outside the
        database for the workspace."""
        self._cleanups.append(cleanup)

    def holdings_from(
        self, holdings: Holdings, after_delete: Callable[[list[str]], Awaitable[None]] | None = None
    ) -> None:
        """Also count what ``holdings`` lists before a workspace may be deleted; once a forced
        deletion committed, ``after_delete`` hears what went (to invalidate caches)."""
        self._holdings.append(holdings)
        if after_delete is not None:
            self._after_delete.append(after_delete)

    async def _held(self, conn: Connection, workspace_id: int) -> list[str]:
        held: list[str] = []
        for holdings in self._holdings:
            held += await holdings(conn, workspace_id)
        if not self._holdings:  # no feature wired (unit tests): the registry's repositories
            rows = await conn.execute(
                select(repositories.c.name).where(repositories.c.workspace_id == workspace_id)
            )
            held = [f"repository {row[0]}" for row in rows]
        return held

    async def create(
        self,
        actor: Subject,
        name: str,
        *,
        description: str = "",
        default_visibility: str = "private",
        client_ip: str | None = None,
    ) -> Workspace:
        require_user(actor)
        check_name(name, "workspace name")
        check_visibility(default_visibility)
        now = time.time()
        async with self.db.write() as conn:
            if await _name_taken(conn, name):
                raise Conflict(f"the name {name!r} is taken by a user or a workspace")
            ws_id = (
                await conn.execute(
                    workspaces.insert()
                    .values(
                        name=name,
                        kind="org",
                        description=description,
                        default_visibility=default_visibility,
                        created_at=now,
                        created_by=actor.id,
                    )
                    .returning(workspaces.c.id)
                )
            ).scalar_one()
            await conn.execute(
                memberships.insert().values(
                    workspace_id=ws_id, user_id=actor.id, role="owner", created_at=now
                )
            )
            await audit.record(
                conn, actor, "workspace.create", workspace_id=ws_id, target=name, client_ip=client_ip
            )
            return await find_workspace(conn, name)

    async def get(self, actor: Subject, name: str) -> tuple[Workspace, str | None]:
        """The workspace and the actor's role in it (None if not a member)."""
        async with self.db.read() as conn:
            ws = await find_workspace(conn, name)
            return ws, await workspace_role(conn, actor, ws.id)

    async def visible(self, actor: Subject, mine: bool = False) -> list[tuple[Workspace, str | None]]:
        """The workspaces the actor may see, with the actor's role: every organisation (their
        names are not secret: people need them to ask for access); a personal workspace
        (named after its user) only to those who hold a role in it and, once it holds a
        public repository (whose name shows it anyway), to everyone; admins see them all.
        ``mine``: only those the actor holds a role in (admins too). Filtered in the query."""
        plain = Subject(actor.kind, actor.id, actor.name)  # without the admin shortcut
        roles = workspace_role_rows(plain).subquery()
        held = workspaces.c.id.in_(select(roles.c.workspace_id))
        public = (
            select(repositories.c.id)
            .where(repositories.c.workspace_id == workspaces.c.id, repositories.c.visibility == "public")
            .exists()
        )
        stmt = select(workspaces).order_by(workspaces.c.name)
        if mine:
            stmt = stmt.where(held)
        elif not actor.is_admin:
            stmt = stmt.where(or_(workspaces.c.kind == "org", held, public))
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
            own: dict[int, list[str]] = {}
            for workspace_id, role in await conn.execute(select(roles.c.workspace_id, roles.c.role)):
                own.setdefault(workspace_id, []).append(role)
        return [
            (ws, "owner" if actor.is_admin else highest(own.get(ws.id, [])))
            for ws in (workspace_of(row) for row in rows)
        ]

    async def update(
        self,
        actor: Subject,
        name: str,
        *,
        description: str | None = None,
        default_visibility: str | None = None,
        client_ip: str | None = None,
    ) -> Workspace:
        values: dict[str, object] = {}
        if description is not None:
            values["description"] = description
        if default_visibility is not None:
            check_visibility(default_visibility)
            values["default_visibility"] = default_visibility
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            if values:
                await conn.execute(update(workspaces).where(workspaces.c.id == ws.id).values(**values))
                await audit.record(
                    conn,
                    actor,
                    "workspace.update",
                    workspace_id=ws.id,
                    target=name,
                    client_ip=client_ip,
                    detail={k: str(v) for k, v in values.items()},
                )
            return await find_workspace(conn, name)

    async def delete(
        self, actor: Subject, name: str, client_ip: str | None = None, *, force: bool = False
    ) -> list[str]:
        """Delete an organisation. While it holds anything (images, repositories, build
        definitions) it is refused with the list, unless ``force``d: then everything goes with
        it (the registry's bytes once the garbage collector runs); the list is returned and
        audited. Owners and platform admins only, forced or not."""
        async with self.db.write() as conn:
            require_deleter(actor)
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            if ws.kind == "personal":
                raise Conflict("a personal workspace goes with its user; it cannot be deleted on its own")
            # Its repositories' rows first, then its own (the order a push takes them: it
            # share-locks the repository, then its inserts key-share-lock the workspace), so a
            # push into an existing repository commits first or waits, and never deadlocks.
            # Then the workspace row: a push creating a repository in it (which share-locks it,
            # :mod:`dockyard.registry.repositories`) commits before the holdings are read, or
            # waits for this deletion and then finds no workspace.
            owned = select(repositories.c.id).where(repositories.c.workspace_id == ws.id)
            await conn.execute(owned.order_by(repositories.c.id).with_for_update())
            held_row = select(workspaces.c.id).where(workspaces.c.id == ws.id).with_for_update()
            if (await conn.execute(held_row)).first() is None:
                raise NotFound(f"workspace {name!r} not found")  # deleted meanwhile
            held = await self._held(conn, ws.id)
            if held and not force:
                raise StillHolds(
                    f"workspace {name!r} still holds {len(held)} item(s): {', '.join(held[:20])}"
                    f"{' ...' if len(held) > 20 else ''}; delete them first, or force the deletion",
                    held,
                )
            removals = [await cleanup(conn, ws.id) for cleanup in self._cleanups]
            await conn.execute(delete(workspaces).where(workspaces.c.id == ws.id))
            await audit.record(
                conn,
                actor,
                "workspace.delete",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"forced": True, "deleted": held} if held else {},
            )
        for after in self._after_delete:
            await after(held)
        for remove in removals:
            await remove()
        return held

    # --- members ------------------------------------------------------------------

    async def members(self, actor: Subject, name: str) -> list[Member]:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "reader")
            rows = (
                await conn.execute(
                    select(users.c.username, memberships.c.role, memberships.c.created_at)
                    .join(users, users.c.id == memberships.c.user_id)
                    .where(memberships.c.workspace_id == ws.id)
                    .order_by(users.c.username)
                )
            ).all()
        return [Member(row[0], row[1], row[2]) for row in rows]

    async def set_member(
        self, actor: Subject, name: str, username: str, role: str, client_ip: str | None = None
    ) -> Member:
        check_role(role)
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            if ws.kind == "personal":
                raise Conflict(
                    "a personal workspace has one member, its user; create an organisation to share"
                )
            user_id = await find_user_id(conn, username)
            current = (
                await conn.execute(
                    select(memberships.c.role).where(
                        memberships.c.workspace_id == ws.id, memberships.c.user_id == user_id
                    )
                )
            ).first()
            now = time.time()
            if current is None:
                await conn.execute(
                    memberships.insert().values(
                        workspace_id=ws.id, user_id=user_id, role=role, created_at=now
                    )
                )
            else:
                if current[0] == "owner" and role != "owner":
                    await keep_an_owner(conn, ws.id)
                await conn.execute(
                    update(memberships)
                    .where(memberships.c.workspace_id == ws.id, memberships.c.user_id == user_id)
                    .values(role=role)
                )
            await audit.record(
                conn,
                actor,
                "member.set",
                workspace_id=ws.id,
                target=username,
                client_ip=client_ip,
                detail={"role": role, "previous": None if current is None else current[0]},
            )
        return Member(username, role, now)

    async def remove_member(
        self, actor: Subject, name: str, username: str, client_ip: str | None = None
    ) -> None:
        require_user(actor)  # leaving needs no role, but it is management all the same
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            if actor.name != username:  # leaving needs no role
                await require_role(conn, actor, ws, "owner")
            user_id = await find_user_id(conn, username)
            current = (
                await conn.execute(
                    select(memberships.c.role).where(
                        memberships.c.workspace_id == ws.id, memberships.c.user_id == user_id
                    )
                )
            ).first()
            if current is None:
                raise NotFound(f"{username!r} is not a member of {name!r}")
            if current[0] == "owner":
                await keep_an_owner(conn, ws.id)
            await conn.execute(
                delete(memberships).where(
                    memberships.c.workspace_id == ws.id, memberships.c.user_id == user_id
                )
            )
            team_ids = select(teams.c.id).where(teams.c.workspace_id == ws.id)
            await conn.execute(
                delete(team_members).where(
                    team_members.c.user_id == user_id, team_members.c.team_id.in_(team_ids)
                )
            )
            await audit.record(
                conn,
                actor,
                "member.remove",
                workspace_id=ws.id,
                target=username,
                client_ip=client_ip,
                detail={"role": current[0]},
            )

    # --- teams --------------------------------------------------------------------

    async def teams(self, actor: Subject, name: str) -> list[Team]:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "reader")
            rows = (
                await conn.execute(select(teams).where(teams.c.workspace_id == ws.id).order_by(teams.c.name))
            ).all()
            result = []
            for row in rows:
                m = row._mapping
                result.append(await team_view(conn, m["id"], m["name"], m["description"]))
        return result

    async def create_team(
        self, actor: Subject, name: str, team: str, description: str = "", client_ip: str | None = None
    ) -> Team:
        check_name(team, "team name")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            # One statement, so two requests creating the same team cannot both pass a check:
            # the loser's insert does nothing and it gets the 409.
            team_id = (
                await conn.execute(
                    self.db.insert(teams)
                    .values(workspace_id=ws.id, name=team, description=description, created_at=time.time())
                    .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
                    .returning(teams.c.id)
                )
            ).scalar_one_or_none()
            if team_id is None:
                raise Conflict(f"workspace {name!r} already has a team {team!r}")
            await audit.record(
                conn, actor, "team.create", workspace_id=ws.id, target=team, client_ip=client_ip
            )
            return await team_view(conn, team_id, team, description)

    async def delete_team(self, actor: Subject, name: str, team: str, client_ip: str | None = None) -> None:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            team_id = await find_team_id(conn, ws, team)
            await conn.execute(delete(teams).where(teams.c.id == team_id))
            await audit.record(
                conn, actor, "team.delete", workspace_id=ws.id, target=team, client_ip=client_ip
            )

    async def set_team_member(
        self, actor: Subject, name: str, team: str, username: str, present: bool, client_ip: str | None = None
    ) -> Team:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            team_id = await find_team_id(conn, ws, team)
            user_id = await find_user_id(conn, username)
            await conn.execute(
                delete(team_members).where(
                    team_members.c.team_id == team_id, team_members.c.user_id == user_id
                )
            )
            if present:
                await conn.execute(team_members.insert().values(team_id=team_id, user_id=user_id))
            await audit.record(
                conn,
                actor,
                "team.member.add" if present else "team.member.remove",
                workspace_id=ws.id,
                target=f"{team}:{username}",
                client_ip=client_ip,
            )
            row = (await conn.execute(select(teams.c.description).where(teams.c.id == team_id))).one()
            return await team_view(conn, team_id, team, row[0])

    async def set_team_workspace_role(
        self, actor: Subject, name: str, team: str, role: str | None, client_ip: str | None = None
    ) -> Team:
        """The team's role on the whole workspace (None removes it). Repository-level
        roles are set through :class:`dockyard.tenancy.repositories.Repositories`."""
        if role is not None:
            check_role(role)
            if role == "owner":
                raise Invalid("teams may hold reader, developer or maintainer; owners are members")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "owner")
            team_id = await find_team_id(conn, ws, team)
            await conn.execute(
                delete(permissions).where(
                    permissions.c.team_id == team_id, permissions.c.repository_id.is_(None)
                )
            )
            if role is not None:
                await conn.execute(
                    permissions.insert().values(
                        workspace_id=ws.id, team_id=team_id, role=role, created_at=time.time()
                    )
                )
            await audit.record(
                conn,
                actor,
                "team.role",
                workspace_id=ws.id,
                target=team,
                client_ip=client_ip,
                detail={"role": role},
            )
            row = (await conn.execute(select(teams.c.description).where(teams.c.id == team_id))).one()
            return await team_view(conn, team_id, team, row[0])
