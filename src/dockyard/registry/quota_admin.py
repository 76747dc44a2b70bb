"""Who sees and sets a workspace's quota (the counting is :mod:`dockyard.registry.quotas`).

As in Harbor (the system administrator sets project quotas; members see them) and GitLab
(administrators set namespace storage limits): members of a workspace see its usage and
limit, only platform admins change the limit. A limit below the current usage is allowed:
nothing is deleted, pushes of new blobs are refused until enough has been deleted (and
collected). Every change is audited (``workspace.quota``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth import audit
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.auth.policy import Subject
from dockyard.db.engine import Database
from dockyard.errors import Forbidden
from dockyard.registry.quotas import Ledger


@dataclass(frozen=True)
class QuotaView:
    workspace: str
    used_bytes: int  # each blob once, however many of its repositories link it
    limit_bytes: int | None  # in force: its own, else the platform default; None: unlimited
    own_limit_bytes: int | None  # set by an admin for this workspace; None: the default applies
    default_limit_bytes: int | None  # the platform default (DOCKYARD_DEFAULT_WORKSPACE_QUOTA)
    percent: float | None  # used of the limit (may pass 100 when the limit was lowered)


class Quotas:
    def __init__(self, db: Database, ledger: Ledger) -> None:
        self.db = db
        self.ledger = ledger

    async def show(self, actor: Subject, workspace: str) -> QuotaView:
        """Members of the workspace (and admins)."""
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "reader")
            own, used = await self.ledger.own(conn, ws.id)
        return self._view(ws.name, own, used)

    async def set(
        self, actor: Subject, workspace: str, limit: int | None, client_ip: str | None = None
    ) -> QuotaView:
        """Platform admins: set the workspace's own limit in bytes (None: back to the default)."""
        require_user(actor)
        if not actor.is_admin:
            raise Forbidden("only platform administrators set quotas")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await self.ledger.set_limit(conn, ws.id, limit, actor.name)
            await audit.record(
                conn,
                actor,
                "workspace.quota",
                workspace_id=ws.id,
                target=ws.name,
                client_ip=client_ip,
                detail={"limit_bytes": limit},
            )
            own, used = await self.ledger.own(conn, ws.id)
        return self._view(ws.name, own, used)

    def _view(self, workspace: str, own: int | None, used: int) -> QuotaView:
        default = self.ledger.default_limit
        limit = own if own is not None else default
        return QuotaView(workspace, used, limit, own, default, _percent(used, limit))


def _percent(used: int, limit: int | None) -> float | None:
    if limit is None:
        return None
    if limit == 0:
        return 100.0 if used else 0.0
    return round(100 * used / limit, 1)
