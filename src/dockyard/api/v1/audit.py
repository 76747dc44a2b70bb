"""The audit log: workspace owners see their workspace's events, admins see all."""

from __future__ import annotations

from fastapi import APIRouter, Query

from dockyard.api.deps import Caller, Services
from dockyard.api.v1.inputs import IdQuery, Moment, Name
from dockyard.auth import audit
from dockyard.auth.audit import AuditEntry
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.errors import Forbidden

router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    summary="Audit events, newest first (workspace owners; admins for all)",
    description="Filters combine: by action, by actor (a user's or robot's name), and by time "
    "(since included, until not). "
    "Page backwards with before= the id of the last event you have.",
)
async def audit_events(
    services: Services,
    caller: Caller,
    workspace: Name | None = None,
    action: Name | None = None,
    actor: Name | None = None,
    since: Moment = None,
    until: Moment = None,
    before: IdQuery = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[AuditEntry]:
    require_user(caller)
    workspace_id = None
    if workspace is not None:
        async with services.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, caller, ws, "owner")
        workspace_id = ws.id
    elif not caller.is_admin:
        raise Forbidden("only admins read the whole audit log; pass ?workspace= for one you own")
    return await audit.query(
        services.db,
        workspace_id=workspace_id,
        action=action,
        actor_name=actor,
        since=since,
        until=until,
        before_id=before,
        limit=limit,
    )
