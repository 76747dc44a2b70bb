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
from sqlalchemy import RowMapping, delete, select
from sqlalchemy.exc import IntegrityError

from dockyard.auth import audit
from dockyard.auth.guard import find_workspace, require_role
from dockyard.auth.policy import Subject
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.oci.reference import ReferenceError, parse_reference
from dockyard.upstream.profiles import KINDS, check_ca_bundle, ecr_parts
from dockyard.upstream.tables import upstream_credentials


@dataclass(frozen=True)
class ProfileSettings:
    """How a registry profile reaches its host: see :mod:`dockyard.upstream.profiles`.
    ``plain_http`` None keeps the default (plain HTTP for loopback and ``upstream_insecure``)."""

    kind: str = "distribution"
    plain_http: bool | None = None
    tls_verify: bool = True
    ca_bundle: str | None = None
    ecr_account: str | None = None
    ecr_region: str | None = None


@dataclass(frozen=True)
class StoredCredential:
    registry: str
    username: str
    created_at: float
    created_by: str
    settings: ProfileSettings = ProfileSettings()


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


def check_settings(host: str, settings: ProfileSettings) -> ProfileSettings:
    """The settings, checked: a known kind, a bounded PEM CA bundle, ECR's account and region
    (from the host ``<12 digits>.dkr.ecr.<region>.amazonaws.com`` when not given)."""
    if settings.kind not in KINDS:
        raise Invalid(f"unknown registry kind {settings.kind[:40]!r}: use one of {', '.join(KINDS)}")
    bundle = check_ca_bundle(settings.ca_bundle)
    account, region = settings.ecr_account, settings.ecr_region
    if settings.kind == "ecr":
        parts = ecr_parts(host)
        account = account or (parts[0] if parts else None)
        region = region or (parts[1] if parts else None)
        if not account or not region or len(account) != 12 or not account.isdigit() or len(region) > 40:
            raise Invalid(
                "an ECR profile needs the 12-digit account id and the region (the host "
                "<account>.dkr.ecr.<region>.amazonaws.com names both)"
            )
    else:
        account = region = None
    return ProfileSettings(settings.kind, settings.plain_http, settings.tls_verify, bundle, account, region)


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
        workspace: str | None,
        registry: str,
        username: str,
        secret: str,
        client_ip: str | None = None,
        settings: ProfileSettings | None = None,
    ) -> StoredCredential:
        """Keep the registry profile of ``registry`` for ``workspace`` (None: platform-wide,
        admins only), replacing the one there was. Plain HTTP needs an admin."""
        host = normalise_registry(registry)
        settings = check_settings(host, settings or ProfileSettings())
        if bool(username) != bool(secret):
            raise Invalid("give both a username and a secret (password or access token), or neither")
        if not username and settings.kind == "ecr":
            raise Invalid("an ECR profile needs an access key id (username) and its secret access key")
        if (workspace is None or settings.plain_http) and not actor.is_admin:
            raise Forbidden(
                "only an administrator may keep platform-wide registry profiles or use plain HTTP"
                if workspace is None
                else "only an administrator may set a registry profile to plain HTTP (credentials "
                "and images would cross the network unprotected)"
            )
        encrypted = self._cipher().encrypt(secret.encode()).decode() if secret else ""
        now = time.time()
        try:
            await self._replace(actor, workspace, host, username, encrypted, now, settings, client_ip)
        except IntegrityError as exc:
            if "unique" not in str(exc.orig).lower():
                raise
            # One profile per host and owner (for the platform: a partial unique index, as NULLs
            # escape the constraint): a concurrent save inserted its own between our delete and
            # insert. Nothing of ours was written.
            where = "platform-wide" if workspace is None else f"of workspace {workspace!r}"
            raise Conflict(
                f"another {where} registry profile for {host} was saved at the same moment: "
                "look at it (GET) and save yours again to replace it"
            ) from None
        return StoredCredential(host, username, now, actor.name, settings)

    async def _replace(
        self,
        actor: Subject,
        workspace: str | None,
        host: str,
        username: str,
        encrypted: str,
        now: float,
        settings: ProfileSettings,
        client_ip: str | None,
    ) -> None:
        """Delete the owner's profile for ``host`` and insert the new one, in one transaction."""
        async with self.db.write() as conn:
            ws_id: int | None = None
            if workspace is not None:
                ws = await find_workspace(conn, workspace)
                await require_role(conn, actor, ws, "maintainer")
                ws_id = ws.id
            owner = upstream_credentials.c.workspace_id
            await conn.execute(
                delete(upstream_credentials).where(
                    owner.is_(None) if ws_id is None else owner == ws_id,
                    upstream_credentials.c.registry == host,
                )
            )
            await conn.execute(
                upstream_credentials.insert().values(
                    workspace_id=ws_id,
                    registry=host,
                    username=username,
                    secret=encrypted,
                    created_at=now,
                    created_by=actor.name,
                    **settings.__dict__,
                )
            )
            await audit.record(
                conn,
                actor,
                "upstream_credentials.set",
                workspace_id=ws_id,
                target=host,
                client_ip=client_ip,
                detail={"username": username, "kind": settings.kind},
            )

    async def stored(
        self,
        actor: Subject,
        workspace: str | None,
        *,
        limit: int = 500,
        after: str | None = None,
        hosts: tuple[str, ...] | None = None,
    ) -> list[StoredCredential]:
        """The workspace's profiles (maintainers), or the platform-wide ones (None: every
        signed-in user may see them, never their secrets), by host, ``limit`` after ``after``."""
        async with self.db.read() as conn:
            ws_id = await _owner(conn, actor, workspace, manage=False)
            owner = upstream_credentials.c.workspace_id
            query = (
                select(upstream_credentials)
                .where(owner.is_(None) if ws_id is None else owner == ws_id)
                .order_by(upstream_credentials.c.registry)
                .limit(limit)
            )
            if after is not None:
                query = query.where(upstream_credentials.c.registry > after)
            if hosts is not None:
                query = query.where(upstream_credentials.c.registry.in_(hosts))
            rows = (await conn.execute(query)).mappings().all()
        return [_stored(r) for r in rows]

    async def remove(
        self, actor: Subject, workspace: str | None, registry: str, client_ip: str | None = None
    ) -> None:
        host = normalise_registry(registry)
        async with self.db.write() as conn:
            ws_id = await _owner(conn, actor, workspace, manage=True)
            owner = upstream_credentials.c.workspace_id
            result = await conn.execute(
                delete(upstream_credentials).where(
                    owner.is_(None) if ws_id is None else owner == ws_id,
                    upstream_credentials.c.registry == host,
                )
            )
            if not result.rowcount:
                where = "the platform" if workspace is None else f"workspace {workspace!r}"
                raise NotFound(f"{where} keeps no registry profile for {host}")
            await audit.record(
                conn,
                actor,
                "upstream_credentials.remove",
                workspace_id=ws_id,
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


async def _owner(conn: Connection, actor: Subject, workspace: str | None, *, manage: bool) -> int | None:
    """The workspace's id once ``actor`` is its maintainer; None (platform-wide) for an admin
    (or, to read, any signed-in user)."""
    if workspace is not None:
        ws = await find_workspace(conn, workspace)
        await require_role(conn, actor, ws, "maintainer")
        return ws.id
    if manage and not actor.is_admin:
        raise Forbidden("only an administrator may manage platform-wide registry profiles")
    if actor.kind == "anonymous":
        raise Forbidden("sign in to see the platform-wide registry profiles")
    return None


def _stored(row: RowMapping) -> StoredCredential:
    settings = ProfileSettings(
        row["kind"],
        row["plain_http"],
        bool(row["tls_verify"]),
        row["ca_bundle"],
        row["ecr_account"],
        row["ecr_region"],
    )
    return StoredCredential(row["registry"], row["username"], row["created_at"], row["created_by"], settings)
