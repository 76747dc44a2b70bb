"""The audit log: append-only records of security-relevant events."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dockyard.auth.policy import Subject
from dockyard.auth.tables import audit_log, workspaces
from dockyard.db.engine import Connection, Database


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor_kind: str
    actor_name: str
    action: str
    workspace_id: int | None
    target: str
    client_ip: str | None
    detail: dict[str, Any]
    workspace: str | None = None  # its name, while the workspace exists


async def record(
    conn: Connection,
    actor: Subject | None,
    action: str,
    *,
    workspace_id: int | None = None,
    target: str = "",
    client_ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event inside the caller's transaction (so it commits with the change)."""
    await conn.execute(
        audit_log.insert().values(
            at=time.time(),
            actor_kind="system" if actor is None else actor.kind,
            actor_id=None if actor is None else actor.id,
            actor_name="" if actor is None else (actor.name or "anonymous"),
            action=action,
            workspace_id=workspace_id,
            target=target[:300],
            client_ip=client_ip,
            detail=json.dumps(detail or {}, sort_keys=True),
        )
    )


async def query(
    db: Database,
    *,
    workspace_id: int | None = None,
    action: str | None = None,
    actor_name: str | None = None,
    since: float | None = None,
    until: float | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages backwards. ``since`` and ``until`` bound the time
    (seconds since the epoch, ``since`` included, ``until`` not)."""
    stmt = (
        select(audit_log, workspaces.c.name.label("workspace_name"))
        .outerjoin(workspaces, workspaces.c.id == audit_log.c.workspace_id)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    if workspace_id is not None:
        stmt = stmt.where(audit_log.c.workspace_id == workspace_id)
    if action is not None:
        stmt = stmt.where(audit_log.c.action == action)
    if actor_name is not None:
        stmt = stmt.where(audit_log.c.actor_name == actor_name)
    if since is not None:
        stmt = stmt.where(audit_log.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit_log.c.at < until)
    if before_id is not None:
        stmt = stmt.where(audit_log.c.id < before_id)
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [
        AuditEntry(
            id=row["id"],
            at=row["at"],
            actor_kind=row["actor_kind"],
            actor_name=row["actor_name"],
            action=row["action"],
            workspace_id=row["workspace_id"],
            target=row["target"],
            client_ip=row["client_ip"],
            detail=json.loads(row["detail"]),
            workspace=row["workspace_name"],
        )
        for row in rows
    ]
