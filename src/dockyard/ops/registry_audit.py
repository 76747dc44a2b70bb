"""Pushes and deletes on /v2, written to the audit log with who did them and from where."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

from dockyard.auth import audit
from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.db.engine import Connection
from dockyard.registry.events import Event, ManifestDeleted, ManifestPushed


class AuditListener:
    """A handler of the registry's outbox (:mod:`dockyard.registry.outbox`): the audit row is
    written in the transaction that applies the event, so it is written exactly once; the event
    names its actor (principal and client address)."""

    async def __call__(self, conn: Connection, event: Event) -> None:
        actor, client_ip = None, None
        if event.actor is not None:
            principal, client_ip = event.actor.principal, event.actor.client_host
            kind: Literal["user", "robot", "anonymous"] = (
                "user" if principal.kind == "user" else "robot" if principal.kind == "robot" else "anonymous"
            )
            actor = Subject(kind, principal.id, principal.name)
        if isinstance(event, ManifestPushed):
            action, target = "manifest.push", f"{event.repository}@{event.digest}"
            detail: dict[str, object] = {"tag": event.tag, "media_type": event.media_type, "size": event.size}
        elif isinstance(event, ManifestDeleted):
            action, target, detail = "manifest.delete", f"{event.repository}@{event.digest}", {}
        else:
            action, target, detail = "tag.delete", f"{event.repository}:{event.tag}", {}
        stmt = select(repositories.c.workspace_id).where(repositories.c.name == event.repository)
        workspace_id = (await conn.execute(stmt)).scalar_one_or_none()
        await audit.record(
            conn,
            actor,
            action,
            workspace_id=workspace_id,
            target=target,
            client_ip=client_ip,
            detail=detail,
        )
