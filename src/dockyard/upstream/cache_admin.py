"""Who marks a workspace as a pull-through cache, and what it shows.

As for quotas (:mod:`dockyard.registry.quota_admin`), platform admins set it: a cache reaches
the internet with the workspace's credentials, and its size limit is storage the platform
provides. Members of the workspace see it. Every change is audited (``workspace.cache``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from dockyard.auth import audit
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.auth.policy import Subject
from dockyard.db.engine import Database
from dockyard.errors import Forbidden, Invalid, NotFound
from dockyard.registry.quotas import Ledger
from dockyard.upstream.cache import CacheSettings
from dockyard.upstream.tables import cache_workspaces

MAX_REVALIDATE_SECONDS = 365 * 24 * 3600
_DURATION_RE = re.compile(r"([0-9]{1,9})\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """Seconds from ``600``, ``"600"``, ``"10m"``, ``"2h"``, ``"1d"``; anything else is returned
    as it is, for the caller's validator to refuse."""
    if isinstance(value, str):
        found = _DURATION_RE.fullmatch(value.strip().lower())
        if found is None:
            raise ValueError("a duration such as 600, 10m, 2h or 1d")
        return int(found[1]) * _UNITS[found[2]]
    return value


@dataclass(frozen=True)
class CacheView:
    workspace: str
    limit_bytes: int  # GC evicts the least recently pulled manifests until under it
    revalidate_seconds: int  # a cached tag is asked again upstream once this old
    used_bytes: int  # what the workspace stores (each blob once), as its quota counts it
    percent: float


class CacheAdmin:
    def __init__(self, db: Database, ledger: Ledger, settings: CacheSettings) -> None:
        self.db = db
        self.ledger = ledger
        self.settings = settings

    async def show(self, actor: Subject, workspace: str) -> CacheView:
        """Members of the workspace (and admins); :class:`NotFound` when it is no cache."""
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "reader")
            row = (
                await conn.execute(
                    select(cache_workspaces.c.limit_bytes, cache_workspaces.c.revalidate_seconds).where(
                        cache_workspaces.c.workspace_id == ws.id
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"workspace {ws.name!r} is not a pull-through cache")
            _own, used = await self.ledger.own(conn, ws.id)
        limit = int(row[0])
        percent = round(100 * used / limit, 1) if limit else (100.0 if used else 0.0)
        return CacheView(ws.name, limit, int(row[1]), used, percent)

    async def set(
        self, actor: Subject, workspace: str, limit: int, revalidate: int, client_ip: str | None = None
    ) -> CacheView:
        """Platform admins: make the workspace a cache (or change its limit and revalidation)."""
        self._admin(actor)
        if not 0 <= revalidate <= MAX_REVALIDATE_SECONDS:
            raise Invalid(f"the revalidation time must be 0 to {MAX_REVALIDATE_SECONDS} seconds")
        now = time.time()
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            stmt = self.db.insert(cache_workspaces).values(
                workspace_id=ws.id, limit_bytes=limit, revalidate_seconds=revalidate, created_at=now
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["workspace_id"],
                    set_={"limit_bytes": limit, "revalidate_seconds": revalidate},
                )
            )
            detail = {"limit_bytes": limit, "revalidate_seconds": revalidate}
            await audit.record(
                conn,
                actor,
                "workspace.cache",
                workspace_id=ws.id,
                target=ws.name,
                client_ip=client_ip,
                detail=detail,
            )
        self.settings.forget()
        return await self.show(actor, workspace)

    async def clear(self, actor: Subject, workspace: str, client_ip: str | None = None) -> None:
        """Platform admins: the workspace is an ordinary one again (what it cached stays)."""
        self._admin(actor)
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await conn.execute(delete(cache_workspaces).where(cache_workspaces.c.workspace_id == ws.id))
            await audit.record(
                conn,
                actor,
                "workspace.cache",
                workspace_id=ws.id,
                target=ws.name,
                client_ip=client_ip,
                detail=None,
            )
        self.settings.forget()

    @staticmethod
    def _admin(actor: Subject) -> None:
        require_user(actor)
        if not actor.is_admin:
            raise Forbidden("only platform administrators make a workspace a pull-through cache")
