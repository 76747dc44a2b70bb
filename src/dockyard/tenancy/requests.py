"""Access requests and the notifications they produce.

A signed-in user asks for pull (or push) on a repository by name, with a message. The
answer is the same whether or not the repository exists or is visible to them, so asking
tells nothing. Maintainers of the workspace see pending requests and approve (choosing
the action and an expiry) or reject; both sides are notified through the API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, select, update

from dockyard.auth import audit
from dockyard.auth.facts import namespace_of, workspace_role
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.auth.jwt_tokens import MIN_LIFETIME_DAYS
from dockyard.auth.policy import GRANT_ACTIONS, Subject, role_at_least
from dockyard.auth.tables import memberships, repositories, users
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.oci.errors import InvalidName
from dockyard.oci.names import validate_hosted_name
from dockyard.tenancy.repositories import Grant, grant_in
from dockyard.tenancy.tables import access_requests, notifications

MAX_GRANT_DAYS = 366
STATUSES = ("pending", "approved", "rejected", "cancelled")


@dataclass(frozen=True)
class AccessRequest:
    id: int
    repository: str
    workspace: str
    requester: str
    action: str
    message: str
    status: str
    created_at: float
    decided_by: str | None
    decided_at: float | None
    decision_note: str | None
    grant_expires_at: float | None


@dataclass(frozen=True)
class Notification:
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: float
    read: bool


_DECIDER = users.alias("decider")
_SELECT = (
    select(
        access_requests,
        users.c.username.label("requester_name"),
        _DECIDER.c.username.label("decider_name"),
    )
    .join(users, users.c.id == access_requests.c.requester_id)
    .outerjoin(_DECIDER, _DECIDER.c.id == access_requests.c.decided_by)
)


async def _load(conn: Connection, request_id: int) -> AccessRequest | None:
    row = (await conn.execute(_SELECT.where(access_requests.c.id == request_id))).first()
    return None if row is None else _request(row)


def _request(row: Row[Any]) -> AccessRequest:
    m = row._mapping
    return AccessRequest(
        id=m["id"],
        repository=m["repository"],
        workspace=namespace_of(m["repository"]),
        requester=m["requester_name"],
        action=m["action"],
        message=m["message"],
        status=m["status"],
        created_at=m["created_at"],
        decided_by=m["decider_name"],
        decided_at=m["decided_at"],
        decision_note=m["decision_note"],
        grant_expires_at=m["grant_expires_at"],
    )


async def notify(conn: Connection, user_id: int, kind: str, payload: dict[str, Any]) -> None:
    await conn.execute(
        notifications.insert().values(
            user_id=user_id, kind=kind, payload=json.dumps(payload, sort_keys=True), created_at=time.time()
        )
    )


# Told of a request created or approved ("requested", "approved") in its transaction: the
# webhooks' outbox, wired in app (this layer imports nothing above it).
RequestRecorder = Callable[[Connection, int, str, "AccessRequest"], Awaitable[None]]


class AccessRequests:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._recorders: list[RequestRecorder] = []

    def record_with(self, recorder: RequestRecorder) -> None:
        self._recorders.append(recorder)

    async def _record(self, conn: Connection, workspace_id: int, change: str, request: AccessRequest) -> None:
        for recorder in self._recorders:
            await recorder(conn, workspace_id, change, request)

    async def create(
        self, actor: Subject, repository: str, action: str, message: str = "", client_ip: str | None = None
    ) -> AccessRequest:
        require_user(actor)
        try:
            validate_hosted_name(repository)
        except InvalidName:
            raise Invalid(
                f"{repository[:200]!r} is not a repository name (like 'genomics/samtools')"
            ) from None
        if action not in GRANT_ACTIONS:
            raise Invalid("ask for 'pull' or 'push'")
        if len(message) > 2000:
            raise Invalid("keep the message under 2,000 characters")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, namespace_of(repository))
            pending = (
                await conn.execute(
                    select(access_requests.c.id).where(
                        access_requests.c.repository == repository,
                        access_requests.c.requester_id == actor.id,
                        access_requests.c.status == "pending",
                    )
                )
            ).first()
            if pending is not None:
                raise Conflict(f"you already have a pending request ({pending[0]}) for {repository!r}")
            request_id = (
                await conn.execute(
                    access_requests.insert()
                    .values(
                        workspace_id=ws.id,
                        repository=repository,
                        requester_id=actor.id,
                        action=action,
                        message=message,
                        status="pending",
                        created_at=time.time(),
                    )
                    .returning(access_requests.c.id)
                )
            ).scalar_one()
            managers = (
                await conn.execute(
                    select(memberships.c.user_id).where(
                        memberships.c.workspace_id == ws.id, memberships.c.role.in_(("maintainer", "owner"))
                    )
                )
            ).all()
            for (user_id,) in managers:
                await notify(
                    conn,
                    user_id,
                    "access_request.created",
                    {
                        "request_id": request_id,
                        "repository": repository,
                        "requester": actor.name,
                        "action": action,
                    },
                )
            await audit.record(
                conn,
                actor,
                "access_request.create",
                workspace_id=ws.id,
                target=repository,
                client_ip=client_ip,
                detail={"action": action, "request_id": request_id},
            )
            found = await _load(conn, request_id)
            assert found is not None
            await self._record(conn, ws.id, "requested", found)
        return found

    async def find(
        self,
        actor: Subject,
        *,
        workspace: str | None = None,
        status: str | None = None,
        mine: bool = False,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AccessRequest]:
        """The actor's own requests (``mine``), or those of a workspace they maintain: newest
        first, ``limit`` of them older than request ``before``."""
        require_user(actor)
        if status is not None and status not in STATUSES:
            raise Invalid(f"status is one of {', '.join(STATUSES)}")
        stmt = _SELECT.order_by(access_requests.c.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(access_requests.c.id < before)
        if status is not None:
            stmt = stmt.where(access_requests.c.status == status)
        async with self.db.read() as conn:
            if mine or (workspace is None and not actor.is_admin):
                stmt = stmt.where(access_requests.c.requester_id == actor.id)
            if workspace is not None:
                ws = await find_workspace(conn, workspace)
                await require_role(conn, actor, ws, "maintainer")
                stmt = stmt.where(access_requests.c.workspace_id == ws.id)
            rows = (await conn.execute(stmt)).all()
        return [_request(row) for row in rows]

    async def get(self, actor: Subject, request_id: int) -> AccessRequest:
        require_user(actor)
        async with self.db.read() as conn:
            found = await _load(conn, request_id)
            if found is None or not await self._may_see(conn, actor, found):
                raise NotFound(f"access request {request_id} not found")
            return found

    async def _may_see(self, conn: Connection, actor: Subject, request: AccessRequest) -> bool:
        if request.requester == actor.name:
            return True
        ws = await find_workspace(conn, request.workspace)
        return role_at_least(await workspace_role(conn, actor, ws.id), "maintainer")

    async def approve(
        self,
        actor: Subject,
        request_id: int,
        *,
        action: str | None = None,
        expires_in_days: float = 30.0,
        note: str = "",
        client_ip: str | None = None,
    ) -> tuple[AccessRequest, Grant]:
        if not MIN_LIFETIME_DAYS <= expires_in_days <= MAX_GRANT_DAYS:  # NaN is neither
            raise Invalid(f"a grant lasts at least two minutes and at most {MAX_GRANT_DAYS} days")
        expires_at = time.time() + expires_in_days * 86400
        async with self.db.write() as conn:
            request, ws = await self._decidable(conn, actor, request_id)
            repo = (
                await conn.execute(
                    select(repositories.c.id).where(
                        repositories.c.name == request.repository, repositories.c.workspace_id == ws.id
                    )
                )
            ).first()
            if repo is None:
                raise Conflict(
                    f"repository {request.repository!r} does not exist (yet); reject the request, or approve "
                    "it once the repository has been pushed"
                )
            chosen = action or request.action
            grant = await grant_in(
                conn,
                actor,
                ws,
                int(repo[0]),
                request.repository,
                request.requester,
                chosen,
                expires_at,
                request_id,
                client_ip,
            )
            found = await self._decide(
                conn,
                actor,
                request,
                "approved",
                note,
                expires_at,
                ws.id,
                client_ip,
                {"action": chosen, "expires_at": expires_at},
            )
            await self._record(conn, ws.id, "approved", found)
        return found, grant

    async def reject(
        self, actor: Subject, request_id: int, note: str = "", client_ip: str | None = None
    ) -> AccessRequest:
        async with self.db.write() as conn:
            request, ws = await self._decidable(conn, actor, request_id)
            found = await self._decide(conn, actor, request, "rejected", note, None, ws.id, client_ip, {})
        return found

    async def cancel(self, actor: Subject, request_id: int, client_ip: str | None = None) -> AccessRequest:
        require_user(actor)
        async with self.db.write() as conn:
            request = await _load(conn, request_id)
            if request is None or request.requester != actor.name:
                raise NotFound(f"access request {request_id} not found")
            if request.status != "pending":
                raise Conflict(f"access request {request_id} is already {request.status}")
            ws = await find_workspace(conn, request.workspace)
            found = await self._decide(conn, actor, request, "cancelled", "", None, ws.id, client_ip, {})
        return found

    async def _decidable(
        self, conn: Connection, actor: Subject, request_id: int
    ) -> tuple[AccessRequest, Any]:
        require_user(actor)
        request = await _load(conn, request_id)
        if request is None:
            raise NotFound(f"access request {request_id} not found")
        ws = await find_workspace(conn, request.workspace)
        if not role_at_least(await workspace_role(conn, actor, ws.id), "maintainer"):
            if request.requester == actor.name:
                raise Invalid("you cannot decide your own request")
            raise NotFound(f"access request {request_id} not found")
        if request.status != "pending":
            raise Conflict(f"access request {request_id} is already {request.status}")
        return request, ws

    @staticmethod
    async def _decide(
        conn: Connection,
        actor: Subject,
        request: AccessRequest,
        status: str,
        note: str,
        expires_at: float | None,
        workspace_id: int,
        client_ip: str | None,
        detail: dict[str, Any],
    ) -> AccessRequest:
        """Close a pending request: record the decision, tell the requester (unless they
        cancelled it themselves), write the audit event, and return the request as it is now."""
        await conn.execute(
            update(access_requests)
            .where(access_requests.c.id == request.id, access_requests.c.status == "pending")
            .values(
                status=status,
                decided_by=actor.id,
                decided_at=time.time(),
                decision_note=note,
                grant_expires_at=expires_at,
            )
        )
        if status != "cancelled":
            payload = {"request_id": request.id, "repository": request.repository, "note": note, **detail}
            await notify(conn, await _user_id(conn, request.requester), f"access_request.{status}", payload)
        verb = {"approved": "approve", "rejected": "reject", "cancelled": "cancel"}[status]
        await audit.record(
            conn,
            actor,
            f"access_request.{verb}",
            workspace_id=workspace_id,
            target=request.repository,
            client_ip=client_ip,
            detail={"request_id": request.id, **detail},
        )
        found = await _load(conn, request.id)
        assert found is not None
        return found

    # --- notifications ------------------------------------------------------------

    async def notifications(
        self, actor: Subject, unread_only: bool = False, *, before: int | None = None, limit: int = 200
    ) -> list[Notification]:
        """The actor's notifications, newest first: ``limit`` of them older than ``before``."""
        require_user(actor)
        stmt = (
            select(notifications)
            .where(notifications.c.user_id == actor.id)
            .order_by(notifications.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(notifications.c.id < before)
        if unread_only:
            stmt = stmt.where(notifications.c.read_at.is_(None))
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [
            Notification(
                row["id"],
                row["kind"],
                json.loads(row["payload"]),
                row["created_at"],
                row["read_at"] is not None,
            )
            for row in rows
        ]

    async def mark_read(self, actor: Subject, notification_id: int | None) -> int:
        """Mark one notification (or all, with None) read; the number marked."""
        require_user(actor)
        where = [notifications.c.user_id == actor.id, notifications.c.read_at.is_(None)]
        if notification_id is not None:
            where.append(notifications.c.id == notification_id)
        async with self.db.write() as conn:
            result = await conn.execute(update(notifications).where(and_(*where)).values(read_at=time.time()))
        return int(result.rowcount or 0)


async def _user_id(conn: Connection, username: str) -> int:
    row = (await conn.execute(select(users.c.id).where(users.c.username == username))).one()
    return int(row[0])
