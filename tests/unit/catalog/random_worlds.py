"""Random permission worlds for the catalog's visibility tests: three workspaces, six users
(the first an admin), four teams, two robots, and random memberships, team members,
permissions (on workspaces and on repositories, usually in the holder's own workspace but not
always), repositories (public, private, or missing), grants (pull, push, or an action that
gives nothing; lasting, expired or not yet; revoked or not), images and versions (internal
and external, every kind and status, a few platforms and sizes). An image is seen, with all
its versions, by whoever may pull its repository (the one visibility since migration 0016).

:func:`load` writes a world straight into the tables (the services refuse some of these
states, which is the point: the SQL rule must agree with the Python one on whatever the tables
hold). :func:`subjects` are the callers to ask about. The reference answers are the Python
ones: ``Access.sees`` and ``Access.role``, and the image list as ``Catalog.search`` computed it
before it moved into SQL (:func:`reference_search`, :func:`reference_versions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select

from dockyard.auth.policy import ANONYMOUS, Subject
from dockyard.auth.tables import (
    memberships,
    permissions,
    repositories,
    repository_grants,
    robots,
    team_members,
    teams,
    users,
    workspaces,
)
from dockyard.catalog.queries import platform_matches
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import image_events, image_versions, images
from dockyard.catalog.views import ImageView, VersionView, source_of
from dockyard.db.engine import Database
from dockyard.errors import NotFound

WORKSPACES = {1: "w0", 2: "w1", 3: "w2"}
USERS = (1, 2, 3, 4, 5, 6)  # 1 is an admin
TEAMS = {1: 1, 2: 1, 3: 2, 4: 3}  # team -> its workspace
ROBOTS = {1: 1, 2: 2}  # robot -> its home workspace
ROLE_CHOICES = (None, "reader", "developer", "maintainer", "owner", "guest")  # guest: no such role
HOUR = 3600.0
PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/arm64", "windows/amd64")


@dataclass(frozen=True)
class Version:
    source: str
    kind: str
    status: str
    platforms: tuple[str, ...]
    size: int | None
    updated: int


@dataclass(frozen=True)
class Image:
    workspace: int
    description: str
    repository: str | None  # its visibility; None: no repository row
    versions: tuple[Version, ...]


@dataclass(frozen=True)
class Permission:
    holder: str  # team or robot
    holder_id: int
    workspace: int
    image: int | None  # the repository of that image (None: the whole workspace)
    role: str


@dataclass(frozen=True)
class Grant:
    user: int
    image: int
    action: str
    expires: float | None  # hours from now
    revoked: bool


@dataclass(frozen=True)
class World:
    images: tuple[Image, ...]
    roles: dict[tuple[int, int], str] = field(default_factory=dict)  # (workspace, user) -> role
    team_members: frozenset[tuple[int, int]] = frozenset()  # (team, user)
    permissions: tuple[Permission, ...] = ()
    grants: tuple[Grant, ...] = ()

    def image_name(self, index: int) -> str:
        return f"{WORKSPACES[self.images[index].workspace]}/img{index}"


versions = st.builds(
    Version,
    source=st.sampled_from(("internal", "external")),
    kind=st.sampled_from(("tool", "bench")),
    status=st.sampled_from(("available", "pending", "unverified", "reachable")),
    platforms=st.lists(st.sampled_from(PLATFORMS), max_size=2, unique=True).map(tuple),
    size=st.one_of(st.none(), st.integers(0, 3)),
    updated=st.integers(0, 3),
)
image_strategy = st.builds(
    Image,
    workspace=st.sampled_from(sorted(WORKSPACES)),
    description=st.sampled_from(("", "aligner for BAM", "Samtools", "100% fast_tool")),
    repository=st.sampled_from((None, "public", "private", "private")),
    versions=st.lists(versions, max_size=3).map(tuple),
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    found_images = tuple(draw(st.lists(image_strategy, max_size=7)))
    # Sparse memberships, so that grants, teams and public repositories decide often.
    pairs = st.tuples(st.sampled_from(sorted(WORKSPACES)), st.sampled_from(USERS[1:]))
    roles = draw(st.dictionaries(pairs, st.sampled_from(ROLE_CHOICES[1:]), max_size=5))
    members = frozenset(
        draw(st.lists(st.tuples(st.sampled_from(sorted(TEAMS)), st.sampled_from(USERS[1:])), max_size=4))
    )
    image_ids = st.one_of(st.none(), st.integers(0, len(found_images) - 1)) if found_images else st.none()

    @st.composite
    def permission(draw: st.DrawFn) -> Permission:
        holder = draw(st.sampled_from(("team", "robot")))
        holder_id = draw(st.sampled_from(sorted(TEAMS if holder == "team" else ROBOTS)))
        home = (TEAMS if holder == "team" else ROBOTS)[holder_id]
        image = draw(image_ids)
        usual = home if image is None else found_images[image].workspace
        workspace = draw(st.one_of(st.just(usual), st.sampled_from(sorted(WORKSPACES))))
        return Permission(holder, holder_id, workspace, image, draw(st.sampled_from(ROLE_CHOICES[1:])))

    found_grants: tuple[Grant, ...] = ()
    if found_images:
        found_grants = tuple(
            draw(
                st.lists(
                    st.builds(
                        Grant,
                        user=st.sampled_from(USERS[1:]),
                        image=st.integers(0, len(found_images) - 1),
                        action=st.sampled_from(("pull", "push", "delete")),
                        expires=st.sampled_from((None, -1.0, 1.0)),
                        revoked=st.booleans(),
                    ),
                    max_size=6,
                )
            )
        )
    return World(
        images=found_images,
        roles=roles,
        team_members=members,
        permissions=tuple(draw(st.lists(permission(), max_size=5))),
        grants=found_grants,
    )


def subjects() -> list[Subject]:
    """Admin, anonymous, each user, a user whose token has no pull scope, and the robots
    (one whose token may pull, one whose token may not)."""
    found = [Subject("user", 1, "u1", is_admin=True), ANONYMOUS]
    found += [Subject("user", user, f"u{user}") for user in USERS[1:]]
    found.append(Subject("user", 2, "u2", scopes=frozenset({"api"})))
    found.append(Subject("user", 1, "u1", is_admin=True, scopes=frozenset({"api"})))
    found.append(Subject("robot", 1, "w0+r1", scopes=frozenset({"pull", "api"})))
    found.append(Subject("robot", 2, "w1+r2", scopes=None))
    found.append(Subject("robot", 2, "w1+r2", scopes=frozenset({"push"})))
    return found


CLEARED = (
    image_events,
    image_versions,
    images,
    repository_grants,
    permissions,
    team_members,
    teams,
    robots,
    memberships,
    repositories,
    workspaces,
    users,
)


async def load(db: Database, world: World, now: float) -> None:
    """Replace whatever the tables hold with ``world``."""
    async with db.write() as conn:
        for table in CLEARED:
            await conn.execute(delete(table))
        for user in USERS:
            await conn.execute(
                insert(users).values(id=user, username=f"u{user}", is_admin=user == 1, created_at=now)
            )
        for ws, name in WORKSPACES.items():
            await conn.execute(insert(workspaces).values(id=ws, name=name, kind="org", created_at=now))
        for (ws, user), role in world.roles.items():
            await conn.execute(
                insert(memberships).values(workspace_id=ws, user_id=user, role=role, created_at=now)
            )
        for team, ws in TEAMS.items():
            await conn.execute(
                insert(teams).values(id=team, workspace_id=ws, name=f"t{team}", created_at=now)
            )
        for team, user in world.team_members:
            await conn.execute(insert(team_members).values(team_id=team, user_id=user))
        for robot, ws in ROBOTS.items():
            await conn.execute(
                insert(robots).values(id=robot, workspace_id=ws, name=f"r{robot}", created_at=now)
            )
        for index, image in enumerate(world.images):
            name = world.image_name(index)
            if image.repository is not None:
                await conn.execute(
                    insert(repositories).values(
                        id=index + 1,
                        name=name,
                        created_at=now,
                        workspace_id=image.workspace,
                        visibility=image.repository,
                    )
                )
            await conn.execute(
                insert(images).values(
                    id=index + 1,
                    workspace_id=image.workspace,
                    name=name,
                    description=image.description,
                    created_at=now,
                    updated_at=now,
                )
            )
            for number, version in enumerate(image.versions):
                await conn.execute(
                    insert(image_versions).values(
                        image_id=index + 1,
                        version=f"v{number}",
                        source=version.source,
                        kind=version.kind,
                        status=version.status,
                        platforms=json.dumps(list(version.platforms)),
                        compressed_size=version.size,
                        created_at=now,
                        updated_at=float(version.updated),
                    )
                )
        for permission in world.permissions:
            on = None if permission.image is None else world.images[permission.image]
            if on is not None and on.repository is None:
                continue
            await conn.execute(
                insert(permissions).values(
                    workspace_id=permission.workspace,
                    team_id=permission.holder_id if permission.holder == "team" else None,
                    robot_id=permission.holder_id if permission.holder == "robot" else None,
                    repository_id=None if permission.image is None else permission.image + 1,
                    role=permission.role,
                    created_at=now,
                )
            )
        for grant in world.grants:
            if world.images[grant.image].repository is None:
                continue
            await conn.execute(
                insert(repository_grants).values(
                    repository_id=grant.image + 1,
                    user_id=grant.user,
                    action=grant.action,
                    expires_at=None if grant.expires is None else now + grant.expires * HOUR,
                    created_at=now,
                    revoked_at=now if grant.revoked else None,
                )
            )


async def reference_search(catalog: Catalog, actor: Subject, **filters: Any) -> list[ImageView]:
    """The image list as ``Catalog.search`` computed it in Python (every image, by name, its
    view from ``Catalog.get``, filtered), unpaged."""
    stmt = select(images.c.name, images.c.description, workspaces.c.name).join(workspaces)
    if filters.get("workspace"):
        stmt = stmt.where(workspaces.c.name == filters["workspace"])
    if filters.get("query"):
        pattern = f"%{filters['query'].lower()}%"
        stmt = stmt.where(
            func.lower(images.c.name).like(pattern) | func.lower(images.c.description).like(pattern)
        )
    async with catalog.db.read() as conn:
        names = [row[0] for row in await conn.execute(stmt.order_by(images.c.name))]
    source, kind, status, platform = (filters.get(k) for k in ("source", "kind", "status", "platform"))
    found = []
    for name in names:
        try:
            view = await catalog.get(actor, name)
        except NotFound:
            continue
        kept = [
            v
            for v in view.versions
            if (source is None or v.source == source)
            and (kind is None or v.kind == kind)
            and (status is None or v.status == status)
            and (platform is None or platform_matches(platform, v.platforms))
        ]
        if (source or kind or status or platform) and not kept:
            continue
        found.append(
            ImageView(**{**view.__dict__, "versions": kept, "source": source_of(kept or view.versions)})
        )
    return found


def _sort_key(sort: str, image: ImageView, version: VersionView) -> tuple[Any, ...]:
    size = version.compressed_size
    first: dict[str, Any] = {
        "name": (),
        "version": (version.version,),
        "source": (version.source,),
        "type": (version.kind,),
        "status": (version.status,),
        "size": (size is None, size or 0),  # unknown after every known size
        "modified": (version.updated_at,),
    }
    return (*first[sort], image.name, version.version)


async def reference_versions(
    catalog: Catalog, actor: Subject, sort: str, order: str, **filters: Any
) -> list[tuple[str, str, str, str]]:
    """``(workspace, image, version, description)`` of every visible version that matches,
    sorted as the version list promises, from the Python image views."""
    query = (filters.get("query") or "").lower()
    unfiltered = {k: v for k, v in filters.items() if k != "query"}
    rows = [
        (image, version)
        for image in await reference_search(catalog, actor, **unfiltered)
        for version in image.versions
        if query in image.name.lower() or query in image.description.lower()
    ]
    rows.sort(key=lambda row: _sort_key(sort, *row), reverse=order == "desc")
    return [(image.workspace, image.name, version.version, image.description) for image, version in rows]
