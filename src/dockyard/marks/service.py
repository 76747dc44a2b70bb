"""Who sets the marks: an admin designates a workspace official or verified (publisher);
a workspace's maintainers manage the public keys it trusts for its signatures (any member
lists them). Every change is audit-logged in its transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from dockyard.auth import audit
from dockyard.auth.guard import find_workspace, require_role, require_user
from dockyard.auth.policy import Subject
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.marks import cosign
from dockyard.marks.conditions import USER, WORKSPACE_MARKS
from dockyard.marks.sbom import Sboms
from dockyard.marks.signing import Signatures
from dockyard.marks.tables import trusted_keys, workspace_marks
from dockyard.marks.views import MarkViews

MAX_KEYS = 50  # per workspace


@dataclass(frozen=True)
class WorkspaceMark:
    workspace: str
    mark: str  # official, verified or user


@dataclass(frozen=True)
class TrustedKey:
    key_id: str  # sha256:<hex> of the DER public key
    name: str
    algorithm: str  # ecdsa-p256, ed25519, rsa
    pem: str
    created_at: float
    created_by: str


class WorkspaceMarks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> WorkspaceMark:
        """A workspace's mark (public: it is shown on every image the caller sees)."""
        async with self.db.read() as conn:
            ws = await find_workspace(conn, name)
            found = await conn.execute(
                select(workspace_marks.c.mark).where(workspace_marks.c.workspace_id == ws.id)
            )
            return WorkspaceMark(ws.name, found.scalar() or USER)

    async def set(self, actor: Subject, name: str, mark: str, client_ip: str | None = None) -> WorkspaceMark:
        """Designate the workspace ``official`` or ``verified``, or ``none`` (a user's): admins only."""
        require_user(actor)
        if not actor.is_admin:
            raise Forbidden("only an administrator marks a workspace official or verified")
        if mark not in (*WORKSPACE_MARKS, "none", USER):
            raise Invalid("a workspace's mark is official, verified or none")
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await conn.execute(delete(workspace_marks).where(workspace_marks.c.workspace_id == ws.id))
            if mark in WORKSPACE_MARKS:
                await conn.execute(
                    workspace_marks.insert().values(
                        workspace_id=ws.id, mark=mark, set_at=time.time(), set_by=actor.name
                    )
                )
            shown = mark if mark in WORKSPACE_MARKS else USER
            await audit.record(
                conn,
                actor,
                "workspace.mark",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"mark": shown},
            )
        return WorkspaceMark(ws.name, shown)


class TrustedKeys:
    def __init__(self, db: Database, signatures: Signatures) -> None:
        self.db = db
        self.signatures = signatures

    async def list(self, actor: Subject, name: str) -> list[TrustedKey]:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "reader")
            rows = await conn.execute(
                select(trusted_keys).where(trusted_keys.c.workspace_id == ws.id).order_by(trusted_keys.c.id)
            )
            return [
                TrustedKey(m["key_id"], m["name"], m["algorithm"], m["pem"], m["created_at"], m["created_by"])
                for m in (row._mapping for row in rows)
            ]

    async def add(
        self, actor: Subject, name: str, key_name: str, pem: str, client_ip: str | None = None
    ) -> TrustedKey:
        parsed = cosign.parse_key(pem)
        now = time.time()
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "maintainer")
            held = await conn.execute(
                select(trusted_keys.c.key_id).where(trusted_keys.c.workspace_id == ws.id)
            )
            ids = {row[0] for row in held}
            if parsed.key_id in ids:
                raise Conflict(f"workspace {name!r} trusts key {parsed.key_id} already")
            if len(ids) >= MAX_KEYS:
                raise Conflict(f"a workspace trusts at most {MAX_KEYS} keys")
            await conn.execute(
                trusted_keys.insert().values(
                    workspace_id=ws.id,
                    key_id=parsed.key_id,
                    name=key_name,
                    algorithm=parsed.algorithm,
                    pem=parsed.pem,
                    created_at=now,
                    created_by=actor.name,
                )
            )
            await audit.record(
                conn,
                actor,
                "workspace.key.add",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"key_id": parsed.key_id, "name": key_name, "algorithm": parsed.algorithm},
            )
        await self.signatures.recheck_workspace(ws.id)
        return TrustedKey(parsed.key_id, key_name, parsed.algorithm, parsed.pem, now, actor.name)

    async def remove(self, actor: Subject, name: str, key_id: str, client_ip: str | None = None) -> None:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, name)
            await require_role(conn, actor, ws, "maintainer")
            gone = await conn.execute(
                delete(trusted_keys).where(
                    trusted_keys.c.workspace_id == ws.id, trusted_keys.c.key_id == key_id
                )
            )
            if not gone.rowcount:
                raise NotFound(f"workspace {name!r} does not trust key {key_id!r}")
            await audit.record(
                conn,
                actor,
                "workspace.key.remove",
                workspace_id=ws.id,
                target=name,
                client_ip=client_ip,
                detail={"key_id": key_id},
            )
        await self.signatures.recheck_workspace(ws.id)


@dataclass(frozen=True)
class TrustMarks:
    """The marks' services, built once by the composition root."""

    workspaces: WorkspaceMarks
    keys: TrustedKeys
    sboms: Sboms
    views: MarkViews
