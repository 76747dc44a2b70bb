"""The pull-through cache: a workspace marked as a cache serves ``<ws>/<host>/<path>`` from
the upstream registry ``host`` (zot-like prefix mapping: many upstreams in one workspace).

- Naming: the first component after the workspace is the upstream host as in a reference
  (``docker.io``, ``quay.io``), a port written after ``_`` (``127.0.0.1_5000``: a repository
  name cannot hold ``:``, a host name cannot hold ``_``); it must look like a host (a dot, a
  port or ``localhost``) so a typo is not sent to the internet. ``docker.io/alpine`` asks Docker
  Hub for ``library/alpine``, as docker does; the cache repository keeps the name pulled.
- Manifests: a digest is served from storage once stored, and never asked again; a tag is
  asked again once older than the cache's revalidation time. A revalidation that cannot reach
  the upstream (unreachable, rate limited, a failing server: 5xx) serves the stored copy marked
  stale (:class:`~dockyard.registry.pullthrough.Freshness`); a tag the upstream says is gone
  (404) or refuses (401/403) is answered as the upstream answered: nothing is invented.
- Fetched manifests are stored as ordinary manifests and tags of the cache repository
  (``mirrored``: before their blobs), so catalog, usage, quotas and GC see them; blobs come
  through :mod:`.cache_blobs`.

The upstream is reached only through the cache workspace's registry profiles
(:class:`dockyard.upstream.reach.Reach`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from sqlalchemy import select

from dockyard.auth.tables import workspaces
from dockyard.db.engine import Database
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidDigest
from dockyard.outbound import OutboundPolicy
from dockyard.registry import repositories as repos
from dockyard.registry.errors import BlobUnknown, ManifestUnknown, NameUnknown
from dockyard.registry.manifests import ManifestService, StoredManifest
from dockyard.registry.pullthrough import Freshness, UpstreamRateLimited
from dockyard.upstream.client import API_HOSTS, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES
from dockyard.upstream.reach import Reach
from dockyard.upstream.results import Failed, UpstreamFailure
from dockyard.upstream.session import UpstreamSession
from dockyard.upstream.tables import cache_tag_checks, cache_workspaces

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
SETTINGS_SECONDS = 5.0  # how long a process trusts what it read of the cache workspaces
STALE_KINDS = frozenset({"unreachable", "rate_limited", "upstream_error"})
_DOCKER_HUB = {"docker.io": "docker.io", "index.docker.io": "docker.io", "registry-1.docker.io": "docker.io"}


@dataclass(frozen=True)
class CacheTarget:
    """Where a cache repository's content comes from."""

    workspace_id: int
    revalidate_seconds: int
    host: str  # as users name it: docker.io
    path: str  # the upstream repository: library/alpine

    def label(self) -> str:
        return f"{self.host}/{self.path}"


def split_cached(repository: str) -> tuple[str, str]:
    """(host, upstream path) of ``<ws>/<host>/<path>``; :class:`NameUnknown` when not so named."""
    parts = repository.split("/", 2)
    host = parts[1].lower() if len(parts) == 3 else ""
    if not host or not ("." in host or ":" in host or host == "localhost"):
        raise NameUnknown(
            f"{repository!r} is in a pull-through cache: name images <cache>/<registry host>/<path>, "
            f"like {parts[0]}/docker.io/library/alpine"
        )
    name, _, port = host.rpartition("_")
    if name and port.isdigit() and len(port) <= 5:  # a port: a name component cannot hold ":"
        host = f"{name}:{port}"
    path = parts[2]
    host = _DOCKER_HUB.get(host, host)
    if host == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return host, path


def refusal(failure: Failed, target: CacheTarget, what: str, *, blob: bool = False) -> Exception:
    """The registry error for an upstream failure when nothing is stored, its message naming the
    upstream and its reason.

    A rate limit is TOOMANYREQUESTS (429, with the upstream's Retry-After). Every other reason
    (not found, unreachable, unauthorized, TLS, a failing server) is MANIFEST_UNKNOWN or
    BLOB_UNKNOWN (404): docker, podman and skopeo share one error parser that shows the
    registry's message for 4xx answers only (a 503 prints as "503 Service Unavailable" and
    nothing else), and the content is indeed unknown here; the message says why."""
    message = (
        f"pull-through cache: {what} of {target.label()} is not cached and the upstream failed "
        f"({failure.kind}): {failure.message}"
    )
    if failure.kind == "rate_limited":
        return UpstreamRateLimited(message, failure.retry_after)
    return BlobUnknown(message) if blob else ManifestUnknown(message)


async def create_private(db: Database, repository: str) -> None:
    """Create the cache repository private if it does not exist yet: its upstream was reached
    with credentials, so it may be private there, whatever the workspace's default visibility
    (created so in one transaction: never public for a moment)."""
    async with db.write() as conn:
        await repos.ensure_id(db, conn, repository, visibility="private")


class CacheSettings:
    """Which workspaces are caches, read at most every :data:`SETTINGS_SECONDS` per process (a
    manifest GET of any repository asks)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[str, tuple[int, int]] = {}
        self._read_at = -SETTINGS_SECONDS

    async def target(self, repository: str, *, fresh: bool = False) -> CacheTarget | None:
        """Where ``repository`` is cached from; None when not in a cache workspace. ``fresh``:
        read the settings again first (asked before answering "unknown", so a cache made a
        moment ago, by another process too, is one at once)."""
        if fresh or time.monotonic() - self._read_at > SETTINGS_SECONDS:
            await self._read()
        found = self._known.get(repository.split("/", 1)[0])
        if found is None:
            return None
        host, path = split_cached(repository)
        return CacheTarget(found[0], found[1], host, path)

    async def _read(self) -> None:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(workspaces.c.name, workspaces.c.id, cache_workspaces.c.revalidate_seconds).join(
                    cache_workspaces, cache_workspaces.c.workspace_id == workspaces.c.id
                )
            )
            self._known = {row[0]: (int(row[1]), int(row[2])) for row in rows}
        self._read_at = time.monotonic()

    async def is_cache(self, workspace: str) -> bool:
        """Whether ``workspace`` is a cache workspace, read afresh (asked before a write)."""
        await self._read()
        return workspace in self._known

    def forget(self) -> None:
        """Read the settings again on the next request (after a change in this process)."""
        self._read_at = -SETTINGS_SECONDS


class Upstreams:
    """Sessions to upstream repositories, reached through the cache workspace's registry
    profiles (:class:`~dockyard.upstream.reach.Reach`: scheme, TLS setting, credentials).

    Sessions share one client per TLS setting (verified or not), so consecutive blobs of a pull
    reuse the upstream connection (no TCP or TLS handshake per blob). Credentials are per
    request (each session's ``Authorization``), and the shared clients keep no cookies, so
    nothing of one session reaches another. A profile with its own CA bundle gets a client
    per session."""

    def __init__(self, reach: Reach, outbound: OutboundPolicy) -> None:
        self.reach = reach
        self.outbound = outbound
        self._clients: dict[bool, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def connect(self, target: CacheTarget) -> AsyncIterator[UpstreamSession]:
        """A session to ``target``'s upstream repository."""
        reach = await self.reach.connection_for(target.workspace_id, target.host)
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(reach.verify, bool):
                client = self._shared(reach.verify)
            else:
                client = await stack.enter_async_context(
                    self.outbound.client(timeout=TIMEOUT, verify=reach.verify)
                )
            yield UpstreamSession(
                client,
                scheme=reach.scheme,
                host=target.host,
                api_host=API_HOSTS.get(target.host, target.host),
                repository=target.path,
                credentials=reach.credentials,
            )

    def _shared(self, verify: bool) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None or client.is_closed:
            no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
            client = self.outbound.client(timeout=TIMEOUT, verify=verify, cookies=no_cookies)
            self._clients[verify] = client
        return client

    async def close(self) -> None:
        """Close the shared clients (at shutdown)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class ManifestCache:
    """The manifest half of the cache (:class:`~dockyard.registry.pullthrough.PullThrough`)."""

    def __init__(
        self, db: Database, manifests: ManifestService, settings: CacheSettings, upstreams: Upstreams
    ) -> None:
        self.db = db
        self.manifests = manifests
        self.settings = settings
        self.upstreams = upstreams

    async def manifest(self, repository: str, reference: str) -> Freshness | None:
        target = await self.settings.target(repository)
        stored = await self._stored(repository, reference)
        if target is None and stored is None:
            target = await self.settings.target(repository, fresh=True)
        if target is None:
            return None
        by_digest = ":" in reference
        if by_digest and stored is not None:
            return Freshness("hit")
        if (
            stored is not None
            and time.time() - await self._checked_at(repository, reference) < target.revalidate_seconds
        ):
            return Freshness("hit")
        try:
            content, media_type, digest, private = await self._fetch(target, reference)
        except UpstreamFailure as exc:
            if stored is not None and exc.failure.kind in STALE_KINDS:
                return Freshness("stale", f"{target.host}: {exc.failure.message}")
            raise refusal(exc.failure, target, f"manifest {reference}") from None
        if stored is not None and stored.digest == digest:
            await self._checked(repository, reference)
            return Freshness("hit")
        if private:
            await create_private(self.db, repository)
        await self.manifests.put(repository, reference, content, media_type, actor=None, mirrored=True)
        if not by_digest:
            await self._checked(repository, reference)
        return Freshness("miss")

    async def _stored(self, repository: str, reference: str) -> StoredManifest | None:
        try:
            return await self.manifests.get(repository, reference)
        except (ManifestUnknown, InvalidDigest):
            return None

    async def _fetch(self, target: CacheTarget, reference: str) -> tuple[bytes, str | None, str, bool]:
        """The upstream's manifest bytes, media type, verified digest, and whether it was asked
        with credentials."""
        async with self.upstreams.connect(target) as session:
            what = f"the manifest {reference}"
            private = session.credentials is not None
            fetched = await session.get(
                f"/manifests/{reference}", what=what, limit=MAX_MANIFEST_BYTES, accept=MANIFEST_ACCEPT
            )
            if fetched.status != 200:
                missing = f"{target.label()} has no manifest {reference} (HTTP 404)"
                raise UpstreamFailure(session.failure(fetched, what=what, not_found=missing))
        expected = Digest.parse(reference) if ":" in reference else None
        digest = Digest.of(fetched.body, expected.algorithm if expected else "sha256")
        claimed = fetched.headers.get("docker-content-digest")
        if (expected is not None and digest != expected) or (
            claimed and expected is None and claimed != digest
        ):
            raise UpstreamFailure(
                Failed("invalid", f"{target.host} sent a manifest whose digest is not {expected or claimed}")
            )
        return fetched.body, fetched.content_type, str(digest), private

    async def _checked_at(self, repository: str, tag: str) -> float:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(cache_tag_checks.c.checked_at).where(
                        cache_tag_checks.c.repository == repository, cache_tag_checks.c.tag == tag
                    )
                )
            ).first()
        return 0.0 if row is None else float(row[0])

    async def _checked(self, repository: str, tag: str) -> None:
        now = time.time()
        async with self.db.write() as conn:
            stmt = self.db.insert(cache_tag_checks).values(repository=repository, tag=tag, checked_at=now)
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["repository", "tag"], set_={"checked_at": now})
            )
