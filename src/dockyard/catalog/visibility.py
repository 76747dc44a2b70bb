"""Who sees which catalog image, as SQL: the rule of :class:`~dockyard.catalog.access.Access`
written as a condition a list query can filter, sort and page with.

:func:`image_visible` is a condition on ``images`` that is true exactly where
``Access(conn, subject).sees(image.name)`` is; an image's versions, internal or external, are
seen with it (one setting: the visibility of the repository named like the image). Spelled out
(``tests/unit/catalog/test_visibility.py`` checks the two against each other on random
workspaces, members, teams, robots, grants, repositories and versions, on SQLite and PostgreSQL):

- Admins see every image.
- Others see an image when they may pull its repository (``auth.policy.decide`` over
  ``auth.facts.load_facts``): a token without the ``pull`` scope pulls nothing; otherwise any
  role on the whole workspace (membership or a team's permission for users; a robot's own
  permission, and only in its home workspace), a team's or the robot's role on the repository,
  a user's active grant (not revoked, not expired) on it, or the repository being public
  (anonymous callers included).

Two facts the Python rule derives from the image's *name* are read from its row here: the
workspace (``load_facts`` takes the name's first component, which is the image's workspace:
images are named ``<workspace>/...`` when they are registered, pushed or built) and the
repository (the one named like the image; every image has one since migration 0016).

The subject's workspaces are read once per request (:func:`resolve`, one small query) and
written into the conditions as lists of ids, so a list query is ``workspace_id IN (...)`` an
index serves and a planner can estimate; the few repositories it holds a role or grant on
are uncorrelated subqueries (built once per query, probed per row), and whether the image's
repository is public is a lookup of its unique name (public repositories can be many: a set of
them all would be built whole for a page of 50).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, false, literal, or_, select, true, tuple_, union_all

from dockyard.auth.policy import PULL, ROLES, Subject, role_at_least
from dockyard.auth.tables import (
    memberships,
    permissions,
    repositories,
    repository_grants,
    robots,
    team_members,
)
from dockyard.catalog.tables import images
from dockyard.db.engine import Connection

ANY_ROLE = ROLES
MAINTAINER_ROLES = tuple(role for role in ROLES if role_at_least(role, "maintainer"))
GRANTED = ("pull", "push")  # the grant actions that include pull (auth.policy.GRANT_ACTIONS)


def _home(subject: Subject) -> ColumnElement[int]:
    """The robot's own workspace."""
    return select(robots.c.workspace_id).where(robots.c.id == subject.id).scalar_subquery()


def role_workspaces(
    subject: Subject, roles: tuple[str, ...], *, home_only: bool = False
) -> Select[tuple[int]]:
    """Ids of the workspaces where ``subject`` holds one of ``roles`` on the whole workspace
    (``auth.facts.workspace_roles``); ``home_only``: a robot's only in its own workspace (what
    ``load_facts`` counts)."""
    if subject.kind == "user":
        member = select(memberships.c.workspace_id).where(
            memberships.c.user_id == subject.id, memberships.c.role.in_(roles)
        )
        team = (
            select(permissions.c.workspace_id)
            .join(team_members, team_members.c.team_id == permissions.c.team_id)
            .where(
                team_members.c.user_id == subject.id,
                permissions.c.repository_id.is_(None),
                permissions.c.role.in_(roles),
            )
        )
        rows = union_all(member, team).subquery()
        return select(rows.c.workspace_id)
    if subject.kind == "robot":
        stmt = select(permissions.c.workspace_id).where(
            permissions.c.robot_id == subject.id,
            permissions.c.repository_id.is_(None),
            permissions.c.role.in_(roles),
        )
        return stmt.where(permissions.c.workspace_id == _home(subject)) if home_only else stmt
    return select(permissions.c.workspace_id).where(false())


def _repository_roles(subject: Subject) -> Select[tuple[int, int]]:
    """``(repository id, workspace id)`` of the subject's roles on single repositories
    (``auth.facts.repository_roles``: the permission's workspace must be the repository's)."""
    if subject.kind == "user":
        return (
            select(permissions.c.repository_id, permissions.c.workspace_id)
            .join(team_members, team_members.c.team_id == permissions.c.team_id)
            .where(
                team_members.c.user_id == subject.id,
                permissions.c.repository_id.is_not(None),
                permissions.c.role.in_(ANY_ROLE),
            )
        )
    if subject.kind == "robot":
        return select(permissions.c.repository_id, permissions.c.workspace_id).where(
            permissions.c.robot_id == subject.id,
            permissions.c.repository_id.is_not(None),
            permissions.c.role.in_(ANY_ROLE),
            permissions.c.workspace_id == _home(subject),
        )
    return select(permissions.c.repository_id, permissions.c.workspace_id).where(false())


def _granted(subject: Subject, now: float) -> Select[tuple[int]]:
    """Repositories the user holds an active pull or push grant on."""
    return select(repository_grants.c.repository_id).where(
        repository_grants.c.user_id == subject.id,
        repository_grants.c.revoked_at.is_(None),
        or_(repository_grants.c.expires_at.is_(None), repository_grants.c.expires_at > now),
        repository_grants.c.action.in_(GRANTED),
    )


@dataclass(frozen=True)
class Viewer:
    """Who asks, with the ids of the workspaces where they hold a role, read once per request
    (:func:`resolve`): ``pulling`` where a role lets them pull (a robot's only at home),
    ``maintaining`` maintainer or owner."""

    subject: Subject
    now: float
    pulling: tuple[int, ...] = ()
    maintaining: tuple[int, ...] = ()

    def maintains(self, workspace_id: int) -> bool:
        """``Access.may_delete``: admins, and maintainers or owners of the workspace."""
        return self.subject.is_admin or workspace_id in self.maintaining


async def resolve(conn: Connection, subject: Subject, now: float) -> Viewer:
    """The :class:`Viewer` for ``subject``: one query (none for admins and anonymous callers)."""
    if subject.is_admin or subject.is_anonymous:
        return Viewer(subject, now)
    sets = {
        "pulling": role_workspaces(subject, ANY_ROLE, home_only=True),
        "maintaining": role_workspaces(subject, MAINTAINER_ROLES),
    }
    tagged = union_all(*(stmt.add_columns(literal(name).label("set")) for name, stmt in sets.items()))
    found: dict[str, set[int]] = {name: set() for name in sets}
    for workspace_id, name in await conn.execute(tagged):
        found[name].add(workspace_id)
    return Viewer(subject, now, **{name: tuple(sorted(ids)) for name, ids in found.items()})


def image_pullable(viewer: Viewer) -> ColumnElement[bool]:
    """A condition on ``images``: the subject may pull the repository named like the image
    (``PULL in decide(subject, load_facts(...)).actions``)."""
    subject, now = viewer.subject, viewer.now
    if subject.scopes is not None and PULL not in subject.scopes:
        return false()
    if subject.is_admin:
        return true()
    # The subject's workspaces are ids (resolve); the repositories granted or held through a
    # role are small sets the database builds once per query and probes per row.
    # The repository named like the image, looked up by its unique name per row a page reads
    # (a set of every public name would be built whole for a page of 50).
    public = (
        select(repositories.c.id)
        .where(repositories.c.name == images.c.name, repositories.c.visibility == "public")
        .correlate(images)  # also inside a subquery on the versions, whose query reads images
        .exists()
    )
    if subject.is_anonymous:
        return public
    roles = _repository_roles(subject).subquery()
    held = select(repositories.c.name, roles.c.workspace_id).join(
        roles, roles.c.repository_id == repositories.c.id
    )
    found = [
        images.c.workspace_id.in_(viewer.pulling),
        public,
        tuple_(images.c.name, images.c.workspace_id).in_(held),
    ]
    if subject.kind == "user":
        granted = select(repositories.c.name).where(repositories.c.id.in_(_granted(subject, now)))
        found.append(images.c.name.in_(granted))
    return or_(*found)


def image_visible(viewer: Viewer) -> ColumnElement[bool]:
    """A condition on ``images``: the images (and with each all its versions) the viewer sees."""
    if viewer.subject.is_admin:
        return true()
    return image_pullable(viewer)
