"""Who may do what to a build definition, and the words that say why not.

The checks of :mod:`.definitions` and :mod:`.service` refuse with these messages, and a
definition read through the API carries the same messages for the actions its reader may
not take (``refused``), so a screen can disable a button and say why without trying the
action: one rule, one wording, whether the refusal comes before or after the click.

The roles needed (admins count as owners everywhere): edit a definition (SAVE, its files)
as a developer, delete it as a maintainer, start and cancel its builds as an owner.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dockyard.auth.policy import role_at_least
from dockyard.auth.tables import memberships, users
from dockyard.db.engine import Connection

EDIT, DELETE, BUILD = "edit", "delete", "build"
NEEDED = {EDIT: "developer", DELETE: "maintainer", BUILD: "owner"}


def needs_role(needed: str, workspace: str) -> str:
    return f"this needs the {needed} role (or higher) in workspace {workspace!r}"


def owners_only(workspace: str, name: str, owners: list[str], what: str) -> str:
    return (
        f"only owners of workspace {workspace!r} (and Dockyard admins) may {what} "
        f"{name!r}: ask an owner ({', '.join(owners) or 'none'}), or ask to be made an owner"
    )


async def owners_of(conn: Connection, workspace_id: int) -> list[str]:
    rows = (
        await conn.execute(
            select(users.c.username)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.workspace_id == workspace_id, memberships.c.role == "owner")
            .order_by(users.c.username)
        )
    ).all()
    return [r[0] for r in rows]


class Rights:
    """What one caller, holding ``role`` in the definitions' workspace, may not do to each.

    One instance serves a listing: the workspace's owners are looked up once, and only when
    the caller is not one of them."""

    def __init__(self, conn: Connection, role: str) -> None:
        self.conn = conn
        self.role = role
        self._owners: dict[int, list[str]] = {}

    async def refused(self, m: Any) -> dict[str, str]:
        """``{action: reason}`` for the actions refused on the definition row ``m`` (with
        ``workspace_name``); an action not named is allowed."""
        workspace = m["workspace_name"]
        found: dict[str, str] = {}
        for action in (EDIT, DELETE):
            if not role_at_least(self.role, NEEDED[action]):
                found[action] = needs_role(NEEDED[action], workspace)
        if self.role != NEEDED[BUILD]:
            if m["workspace_id"] not in self._owners:
                self._owners[m["workspace_id"]] = await owners_of(self.conn, m["workspace_id"])
            owners = self._owners[m["workspace_id"]]
            found[BUILD] = owners_only(workspace, m["name"], owners, "start builds of")
        return found
