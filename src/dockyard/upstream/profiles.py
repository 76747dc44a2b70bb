"""Registry profiles: the one answer to "how do I reach registry H for workspace W".

A profile (a row of ``upstream_credentials``) names a host, a kind (dockerhub, quay, gitlab,
ghcr, ecr, ngc, distribution), plain HTTP or TLS (verified by default, optionally against a
CA bundle), and credentials kept encrypted (:mod:`dockyard.upstream.credentials`). A
workspace's own profile for a host wins over a platform-wide one (``workspace_id`` NULL);
Docker Hub's names (docker.io, index.docker.io, registry-1.docker.io) are one host.

For ECR the stored username/secret are an AWS access key pair: :class:`EcrTokens` exchanges
it for a registry token with ``GetAuthorizationToken`` (boto3, endpoint configurable for
tests) and keeps it until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import ssl
import time
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import case, or_, select

from dockyard.db.engine import Connection as DbConnection
from dockyard.db.engine import Database
from dockyard.errors import Invalid
from dockyard.outbound import loopback_registry
from dockyard.upstream.results import Credentials, Failed, UpstreamFailure
from dockyard.upstream.tables import upstream_credentials

KINDS = ("dockerhub", "quay", "gitlab", "ghcr", "ecr", "ngc", "distribution")
MAX_CA_BUNDLE = 64 * 1024  # bytes of PEM: a few certificates, never a whole trust store
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
ECR_HOST_RE = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]{1,40})\.amazonaws\.com(?::[0-9]+)?"
)
ECR_REFRESH_MARGIN = 300.0  # seconds before a token expires that a new one is asked for


@dataclass(frozen=True)
class Connection:
    """How to reach one registry: ``scheme``, the TLS ``verify`` setting (a context trusting
    the profile's CA bundle, or a bool), ``credentials`` (None: anonymous) and the profile
    they come from (``workspace/host`` or ``platform/host``), named in failures."""

    host: str
    scheme: str
    credentials: Credentials | None
    verify: ssl.SSLContext | bool = True
    kind: str = "distribution"
    profile: str | None = None
    ca_bundle: str | None = None  # the PEM ``verify`` trusts, for clients that read certificates from files


def host_aliases(host: str) -> tuple[str, ...]:
    host = host.lower()
    return DOCKER_HUB_ALIASES if host in DOCKER_HUB_ALIASES else (host,)


def ecr_parts(host: str) -> tuple[str, str] | None:
    """(account id, region) of an ECR host ``<12 digits>.dkr.ecr.<region>.amazonaws.com``."""
    match = ECR_HOST_RE.fullmatch(host.lower())
    return (match["account"], match["region"]) if match else None


def check_ca_bundle(pem: str | None) -> str | None:
    if pem is None or not pem.strip():
        return None
    if len(pem.encode()) > MAX_CA_BUNDLE:
        raise Invalid(f"the CA bundle is over {MAX_CA_BUNDLE // 1024} KiB: give only the registry's CA")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise Invalid("the CA bundle is not PEM certificates (-----BEGIN CERTIFICATE-----)") from None
    return pem


@dataclass
class EcrTokens:
    """Registry tokens from ECR's ``GetAuthorizationToken``, cached per profile and key pair
    (the secret's SHA-256, never the secret) until :data:`ECR_REFRESH_MARGIN` seconds before
    they expire: a profile naming another's access key id with another secret gets no token
    but its own. Concurrent requests for one key wait for a single exchange."""

    endpoint_url: str | None = None
    _cache: dict[tuple[str, str, str, str, str], tuple[Credentials, float]] = field(
        default_factory=dict, repr=False
    )
    _locks: dict[tuple[str, str, str, str, str], asyncio.Lock] = field(default_factory=dict, repr=False)
    exchanges: int = 0  # how many times a token was asked for (tests count them)

    async def token(
        self, access_key: str, secret_key: str, account: str, region: str, profile: str
    ) -> Credentials:
        secret_hash = hashlib.sha256(secret_key.encode()).hexdigest()
        key = (profile, access_key, secret_hash, account, region)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] - ECR_REFRESH_MARGIN > time.time():
                return cached[0]
            username, password, expires = await asyncio.to_thread(
                self._exchange, access_key, secret_key, account, region, profile
            )
            credentials = Credentials(username, password, profile)
            self._cache[key] = (credentials, expires)
            return credentials

    def _exchange(
        self, access_key: str, secret_key: str, account: str, region: str, profile: str
    ) -> tuple[str, str, float]:
        import boto3  # only ECR profiles need it
        import botocore.exceptions

        self.exchanges += 1
        client = boto3.client(
            "ecr",
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        try:
            answer = client.get_authorization_token(registryIds=[account])
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))[:100]
            raise UpstreamFailure(
                Failed(
                    "unauthorized",
                    f"ECR refused the access key of the registry profile {profile} ({code}): "
                    f"update its access key pair",
                    profile=profile,
                )
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise UpstreamFailure(
                Failed(
                    "unreachable",
                    f"could not reach the ECR API for {profile}: {str(exc)[:200]}",
                    detail="connect",
                )
            ) from None
        data = answer["authorizationData"][0]
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        expires = data.get("expiresAt")
        when = expires.timestamp() if expires is not None else time.time() + 3600
        return username, password, max(when, time.time() + ECR_REFRESH_MARGIN + 60)


class Profiles:
    """The registry profiles over the database, with the cipher of the credentials' key."""

    def __init__(
        self, db: Database, cipher: Fernet, *, insecure: list[str] | None = None, ecr: EcrTokens | None = None
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.insecure = set(insecure or [])
        self.ecr = ecr or EcrTokens()

    async def connection_for(
        self,
        db_or_conn: Database | DbConnection | None,
        workspace_id: int | None,
        host: str,
        *,
        own_only: bool = False,
    ) -> Connection:
        return await connection_for(
            db_or_conn or self.db, workspace_id, host, profiles=self, own_only=own_only
        )


async def _profile_row(
    conn: DbConnection, workspace_id: int | None, host: str, own_only: bool = False
) -> dict[str, object] | None:
    owner = upstream_credentials.c.workspace_id
    if own_only:
        mine = owner == workspace_id
    elif workspace_id is None:
        mine = owner.is_(None)
    else:
        mine = or_(owner == workspace_id, owner.is_(None))
    row = (
        (
            await conn.execute(
                select(upstream_credentials)
                .where(upstream_credentials.c.registry.in_(host_aliases(host)), mine)
                .order_by(case((owner.is_(None), 1), else_=0))
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def connection_for(
    db_or_conn: Database | DbConnection,
    workspace_id: int | None,
    host: str,
    *,
    profiles: Profiles,
    own_only: bool = False,
) -> Connection:
    """How to reach ``host`` (as named in references) for ``workspace_id``: its own profile,
    else a platform-wide one, else anonymous HTTPS (plain HTTP for loopback and the hosts
    the settings list as insecure; ``own_only``: the workspace's own profile or none, as for
    pushes). Raises :class:`UpstreamFailure` when an ECR token cannot be had."""
    if isinstance(db_or_conn, Database):
        async with db_or_conn.read() as conn:
            row = await _profile_row(conn, workspace_id, host, own_only)
    else:
        row = await _profile_row(db_or_conn, workspace_id, host, own_only)
    plain_default = host in profiles.insecure or loopback_registry(host)
    if row is None:
        return Connection(host, "http" if plain_default else "https", None)
    owner = "platform" if row["workspace_id"] is None else f"workspace {row['workspace_id']}"
    name = f"{row['registry']} ({owner})"
    plain = plain_default if row["plain_http"] is None else bool(row["plain_http"])
    scheme = "http" if plain else "https"
    verify: ssl.SSLContext | bool = bool(row["tls_verify"])
    if verify and row["ca_bundle"]:
        verify = ssl.create_default_context(cadata=str(row["ca_bundle"]))
    credentials: Credentials | None = None
    username, secret = str(row["username"]), str(row["secret"])
    if username and secret:
        try:
            clear = profiles.cipher.decrypt(secret.encode()).decode()
        except InvalidToken:
            clear = ""  # the key changed: as if none were kept (maintainers set them again)
        if clear:
            credentials = Credentials(username, clear, name)
            if row["kind"] == "ecr":
                account = str(row["ecr_account"] or "") or (ecr_parts(host) or ("", ""))[0]
                region = str(row["ecr_region"] or "") or (ecr_parts(host) or ("", ""))[1]
                credentials = await profiles.ecr.token(username, clear, account, region, name)
    ca_bundle = str(row["ca_bundle"]) if verify and row["ca_bundle"] else None
    return Connection(host, scheme, credentials, verify, str(row["kind"]), name, ca_bundle)
