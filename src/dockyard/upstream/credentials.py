"""Credentials a workspace keeps for other registries, used to verify its private external
images. Secrets are encrypted at rest (Fernet: AES-128-CBC + HMAC) with a key file that is
created at first use (mode 0600) beside the token-signing keys, or named by settings; they
are never returned by the API."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select

from dockyard.auth import audit
from dockyard.auth.guard import find_workspace, require_role
from dockyard.auth.policy import Subject
from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound
from dockyard.oci.reference import ReferenceError, parse_reference
from dockyard.upstream.tables import upstream_credentials


@dataclass(frozen=True)
class StoredCredential:
    registry: str
    username: str
    created_at: float
    created_by: str


def _load_key(path: Path) -> bytes:
    """The key in ``path``, made on first use. The file only ever appears whole: the key is
    written and synced under a private name, then linked into place (``link`` fails if the
    name exists), so a worker starting at the same moment reads the winner's key, never a
    file still being written."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another worker made it first: theirs wins
            os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return path.read_bytes().strip()


def normalise_registry(registry: str) -> str:
    """``docker.io``, ``quay.io``, ``127.0.0.1:5000``: the registry part of a reference."""
    try:
        return parse_reference(f"{registry.strip().lower()}/x/y:z").registry
    except ReferenceError:
        raise Invalid(
            f"{registry[:100]!r} is not a registry host (like quay.io or registry.example.org:5000)"
        ) from None


class CredentialStore:
    def __init__(self, db: Database, key_file: Path) -> None:
        self.db = db
        self.key_file = key_file
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        return self.cipher()

    def cipher(self) -> Fernet:
        """The cipher of the key file (made on first use); webhooks keep their secrets with it."""
        if self._fernet is None:
            self._fernet = Fernet(_load_key(self.key_file))
        return self._fernet

    async def put(
        self,
        actor: Subject,
        workspace: str,
        registry: str,
        username: str,
        secret: str,
        client_ip: str | None = None,
    ) -> StoredCredential:
        host = normalise_registry(registry)
        if not username or not secret:
            raise Invalid("give both a username and a secret (password or access token)")
        encrypted = self._cipher().encrypt(secret.encode()).decode()
        now = time.time()
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "maintainer")
            await conn.execute(
                delete(upstream_credentials).where(
                    upstream_credentials.c.workspace_id == ws.id, upstream_credentials.c.registry == host
                )
            )
            await conn.execute(
                upstream_credentials.insert().values(
                    workspace_id=ws.id,
                    registry=host,
                    username=username,
                    secret=encrypted,
                    created_at=now,
                    created_by=actor.name,
                )
            )
            await audit.record(
                conn,
                actor,
                "upstream_credentials.set",
                workspace_id=ws.id,
                target=host,
                client_ip=client_ip,
                detail={"username": username},
            )
        return StoredCredential(host, username, now, actor.name)

    async def stored(self, actor: Subject, workspace: str) -> list[StoredCredential]:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "maintainer")
            rows = (
                (
                    await conn.execute(
                        select(upstream_credentials)
                        .where(upstream_credentials.c.workspace_id == ws.id)
                        .order_by(upstream_credentials.c.registry)
                    )
                )
                .mappings()
                .all()
            )
        return [
            StoredCredential(r["registry"], r["username"], r["created_at"], r["created_by"]) for r in rows
        ]

    async def remove(
        self, actor: Subject, workspace: str, registry: str, client_ip: str | None = None
    ) -> None:
        host = normalise_registry(registry)
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await require_role(conn, actor, ws, "maintainer")
            result = await conn.execute(
                delete(upstream_credentials).where(
                    upstream_credentials.c.workspace_id == ws.id, upstream_credentials.c.registry == host
                )
            )
            if not result.rowcount:
                raise NotFound(f"workspace {workspace!r} keeps no credentials for {host}")
            await audit.record(
                conn,
                actor,
                "upstream_credentials.remove",
                workspace_id=ws.id,
                target=host,
                client_ip=client_ip,
            )

    async def lookup(self, workspace_id: int, registry: str) -> tuple[str, str] | None:
        """(username, secret) for verifying an image of the workspace; None if none kept."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(upstream_credentials.c.username, upstream_credentials.c.secret).where(
                        upstream_credentials.c.workspace_id == workspace_id,
                        upstream_credentials.c.registry == registry,
                    )
                )
            ).first()
        if row is None:
            return None
        try:
            return row[0], self._cipher().decrypt(row[1].encode()).decode()
        except InvalidToken:
            return None  # the key changed: as if none were kept (the API lets maintainers set them again)
