"""Composition root: ``create_app(settings)`` builds every service and wires the layers.

The only module that imports every layer. Nothing else holds module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from dockyard import __version__
from dockyard.api.rest import create_api
from dockyard.api.token_endpoint import TokenEndpoint
from dockyard.api.v1.archives import ArchiveServices
from dockyard.api.v1.catalog import CatalogServices
from dockyard.auth.accounts import Accounts
from dockyard.auth.authorizer import TokenAuthorizer
from dockyard.auth.base import Authorizer
from dockyard.auth.basic import AdminAuthorizer
from dockyard.auth.jwt_tokens import TokenService
from dockyard.auth.keys import KeyRing
from dockyard.auth.passwords import Passwords
from dockyard.auth.throttle import LoginThrottle, ThrottlePolicy
from dockyard.auth.token_server import TokenServer
from dockyard.auth.tokens import Tokens
from dockyard.builds import runs
from dockyard.builds.buildah import BuildahBuilder
from dockyard.builds.definitions import BuildDefinitions
from dockyard.builds.logins import FixedLogins, InternalLogins, UserTokenLogins
from dockyard.builds.service import JOB_KIND, BuildLimits, BuildService
from dockyard.catalog.admission import PushPolicy
from dockyard.catalog.content import RegistryContent
from dockyard.catalog.inspections import INSPECTION_GATE_ENV, Inspections, file_gate
from dockyard.catalog.measure import MeasureLimits
from dockyard.catalog.service import Catalog
from dockyard.catalog.sync import CatalogSync
from dockyard.catalog.usage import Usage
from dockyard.catalog.verify import Verification
from dockyard.cluster import leases
from dockyard.cluster.cache import Generations, PostgresGenerations, SharedMemoryGenerations
from dockyard.cluster.locks import FileUploadLocks, PostgresUploadLocks, UploadLocks
from dockyard.cluster.siblings import SiblingSocket, run_dir_for, worker_socket
from dockyard.db.engine import Database
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.recovery import recover_periodically
from dockyard.jobs.worker import Handler, Worker
from dockyard.ops import logs, metrics
from dockyard.ops.access import AccessLog, LineBuffer
from dockyard.ops.forwarded import parse_networks, with_client
from dockyard.ops.registry_audit import AuditListener
from dockyard.outbound import OutboundPolicy
from dockyard.registry.blobs import BlobService
from dockyard.registry.events import EventBus
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.router import RegistryApp
from dockyard.registry.manifests import ManifestService
from dockyard.registry.uploads import UploadService
from dockyard.settings import Settings
from dockyard.storage.base import StorageDriver
from dockyard.storage.factory import create_driver
from dockyard.tenancy.repositories import Repositories
from dockyard.tenancy.requests import AccessRequests
from dockyard.tenancy.services import Identity
from dockyard.tenancy.workspaces import Workspaces
from dockyard.transfer.exports.service import Exports
from dockyard.transfer.imports.holders import Holders
from dockyard.transfer.imports.purge import ArchivePurge
from dockyard.transfer.imports.service import ArchiveUploads
from dockyard.transfer.imports.versions import ArchiveVersions
from dockyard.upstream.credentials import CredentialStore
from dockyard.upstream.verifier import UpstreamResolver
from dockyard.web.app import WebUI

log = logging.getLogger("dockyard")


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: StorageDriver
    events: EventBus
    generations: Generations
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    gc: GarbageCollector
    archive_purge: ArchivePurge
    identity: Identity
    catalog: Catalog
    catalog_sync: CatalogSync
    inspections: Inspections
    verification: Verification
    jobs: JobQueue
    job_handlers: dict[str, Handler] = field(default_factory=dict)  # job kind -> handler
    builds: BuildService | None = None

    async def close(self) -> None:
        """Stop background work and release connections (after the last request)."""
        await self.generations.stop()
        await self.db.dispose()


def build_generations(settings: Settings, db: Database) -> Generations:
    """How processes learn of each other's writes: shared memory on one machine (SQLite),
    NOTIFY between the replicas of a PostgreSQL deployment."""
    if db.is_sqlite:
        return SharedMemoryGenerations(settings.data_dir.resolve() / "generations")
    return PostgresGenerations(db.raw_dsn)


def build_upload_locks(settings: Settings, db: Database) -> UploadLocks:
    """Locks that die with their holder: flock on one machine (SQLite), advisory locks on PostgreSQL."""
    if db.is_sqlite:
        return FileUploadLocks(settings.data_dir.resolve() / "locks" / "uploads")
    return PostgresUploadLocks(db.raw_dsn)


def build_services(settings: Settings, storage: StorageDriver | None = None) -> Services:
    db = Database(settings.effective_database_url)
    storage = storage or create_driver(settings.storage_driver, settings.effective_storage_root)
    events = EventBus()
    generations = build_generations(settings, db)
    blobs = BlobService(db, storage, generations)
    locks = build_upload_locks(settings, db)
    uploads = UploadService(db, storage, blobs, locks)
    manifests = ManifestService(db, events, settings.max_manifest_bytes, generations)
    gc = GarbageCollector(
        db, storage, uploads, generations, settings.gc_grace_seconds, settings.upload_purge_seconds
    )
    identity = build_identity(settings, db)
    catalog = Catalog(db)
    content = RegistryContent(manifests, blobs)
    jobs = JobQueue(db)
    jobs.keep_while_needed(runs.jobs_still_needed)  # a build run that has not ended needs its job
    gate = os.environ.get(INSPECTION_GATE_ENV)  # a test seam: see file_gate
    inspections = Inspections(
        db,
        catalog,
        content,
        content.stream,
        jobs,
        MeasureLimits(settings.inspect_layer_max_bytes, settings.inspect_layer_max_seconds),
        before_inspect=file_gate(Path(gate)) if gate else None,
    )
    sync = CatalogSync(db, inspections)
    events.subscribe(sync)
    manifests.admit_with(PushPolicy(db, content))
    key_file = settings.credentials_key_file or settings.data_dir.resolve() / "keys" / "credentials.key"
    credentials = CredentialStore(db, key_file)
    outbound = OutboundPolicy(settings.outbound_allow)
    verification = Verification(catalog, UpstreamResolver(settings.upstream_insecure, outbound), credentials)
    job_handlers: dict[str, Handler] = {}
    builds = build_builds(settings, db, storage, jobs, identity, credentials, outbound)
    job_handlers[JOB_KIND] = builds.handle
    return Services(
        settings,
        db,
        storage,
        events,
        generations,
        blobs,
        uploads,
        manifests,
        gc,
        ArchivePurge(db, storage, locks, Holders(locks)),
        identity,
        catalog,
        sync,
        inspections,
        verification,
        jobs,
        job_handlers,
        builds,
    )


def build_builds(
    settings: Settings,
    db: Database,
    storage: StorageDriver,
    jobs: JobQueue,
    identity: Identity,
    credentials: CredentialStore,
    outbound: OutboundPolicy,
) -> BuildService:
    """Builds with buildah; they reach this Dockyard's registry as ``build_registry`` and
    sign in as the user who started them (token mode) or as the admin (basic mode)."""
    registry = settings.build_registry or registry_host(settings)
    insecure = not settings.public_url.startswith("https://")
    logins: InternalLogins
    if settings.auth_mode == "token":
        logins = UserTokenLogins(identity.accounts, registry, insecure)
    elif settings.auth_mode == "basic":
        password = settings.admin_password.get_secret_value()
        logins = FixedLogins(registry, insecure, settings.admin_username, password)
    else:
        logins = FixedLogins(registry, insecure)
    work_dir = (settings.build_dir or settings.data_dir / "builds").resolve()
    limits = BuildLimits(settings.build_time_limit_seconds, settings.build_log_max_bytes)
    return BuildService(
        db,
        storage,
        jobs,
        BuildahBuilder(work_dir, git_protocols=settings.build_git_protocols, outbound=outbound),
        BuildDefinitions(
            db, storage, settings.build_git_protocols, settings.build_context_max_bytes, outbound=outbound
        ),
        logins,
        credentials,
        limits,
        settings.upstream_insecure,
    )


def registry_host(settings: Settings) -> str:
    """host[:port] of this server's registry: from ``public_url``, else the listening address."""
    if settings.public_url:
        return urlsplit(settings.public_url).netloc
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"


async def run_jobs(services: Services, stop: asyncio.Event, holder: str, *, work: bool = True) -> None:
    """Background jobs until ``stop`` is set: a worker running the registered handlers (when
    ``work``), the periodic recovery of jobs whose worker stopped, and the purge of old finished jobs.
    Every process also inspects pushed images (their own worker, so that a long build never
    holds them up) and sweeps the catalog's pending versions."""
    settings = services.settings
    retention = settings.job_retention_days * 86400
    lease = settings.job_lease_seconds
    loops = [
        recover_periodically(services.jobs, holder, settings.job_recover_seconds, stop, retention=retention),
        services.inspections.run(
            stop, holder, settings.job_recover_seconds, settings.inspect_concurrency, lease
        ),
    ]
    if work:
        worker = Worker(
            services.jobs, services.job_handlers, concurrency=settings.worker_concurrency, lease_seconds=lease
        )
        loops.append(worker.run(stop))
    await asyncio.gather(*loops)


def build_identity(settings: Settings, db: Database) -> Identity:
    policy = ThrottlePolicy(
        settings.login_max_failures,
        settings.login_max_failures_per_ip,
        settings.login_window_seconds,
        settings.login_lockout_seconds,
    )
    accounts = Accounts(db, Passwords(), LoginThrottle(db, policy), settings.refresh_token_days * 86400)
    keys = KeyRing(
        settings.data_dir.resolve() / "keys",
        settings.token_key_file,
        tuple(settings.token_previous_key_files),
    )
    jwt = TokenService(keys, settings.token_issuer, settings.token_service, settings.token_ttl_seconds)
    return Identity(
        db=db,
        accounts=accounts,
        workspaces=Workspaces(db),
        tokens=Tokens(db),
        repositories=Repositories(db),
        requests=AccessRequests(db),
        keys=keys,
        jwt=jwt,
        token_server=TokenServer(db),
    )


def build_authorizer(services: Services) -> Authorizer:
    settings = services.settings
    if settings.auth_mode == "token":
        identity = services.identity
        return TokenAuthorizer(identity.accounts, identity.jwt, settings.public_url or None)
    return AdminAuthorizer(
        settings.auth_mode, settings.admin_username, settings.admin_password.get_secret_value()
    )


class Dockyard:
    """The ASGI application: /v2 goes to the registry's thin router, the rest to Starlette."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        ctx = RegistryContext(
            services.blobs, services.uploads, services.manifests, build_authorizer(services)
        )
        services.events.subscribe(AuditListener(services.db))
        self.access_lines = LineBuffer() if settings.access_log else None
        self.registry = AccessLog(RegistryApp(ctx), self.access_lines)
        self.archives = ArchiveUploads(
            services.db,
            services.storage,
            services.uploads.locks,
            Usage(services.catalog),
            settings.archive_max_bytes,
            settings.workspace_quota_bytes,
            run_dir=run_dir_for(settings.data_dir),
        )
        archive_versions = ArchiveVersions(
            self.archives, services.db, services.blobs, services.manifests, services.catalog
        )
        routes = [
            Route("/healthz", self.healthz),
            Route("/metrics", self.metrics_endpoint),
            *TokenEndpoint(services.identity).routes(),
            Mount(
                "/api/v1",
                create_api(
                    services.identity,
                    self._catalog_services(),
                    __version__,
                    exports=Exports(
                        services.db, services.catalog, services.manifests, services.blobs, services.storage
                    ),
                    archive_services=ArchiveServices(self.archives, archive_versions),
                    build_service=services.builds,
                ),
            ),
            Mount("/", WebUI(__version__)),  # the web UI: /, /static and its page paths (last)
        ]
        self.web = AccessLog(Starlette(routes=routes), self.access_lines)
        self._holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs_stop = asyncio.Event()
        self._jobs: asyncio.Task[None] | None = None
        self._sibling: SiblingSocket | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            scope = with_client(scope, self.trusted_proxies)
            path: str = scope["path"]
            if path == "/v2" or path.startswith("/v2/"):
                await self.registry(scope, receive, send)
            else:
                await self.web(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        async with self.services.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        await self.services.generations.start()
        await self._bootstrap_identity()
        if self.services.settings.gc_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._gc_loop()))
        work = self.services.settings.worker_enabled
        self._jobs = asyncio.create_task(run_jobs(self.services, self._jobs_stop, self._holder, work=work))
        if self.archives.run_dir is not None:
            self._sibling = SiblingSocket(self, worker_socket(self.archives.run_dir, os.getpid()))
            await self._sibling.start()

    def _catalog_services(self) -> CatalogServices:
        services = self.services
        return CatalogServices(
            services.catalog,
            services.verification,
            Usage(services.catalog),
            services.verification.credentials,
            services.settings.public_url,
        )

    async def _bootstrap_identity(self) -> None:
        """Token keys, and the first admin (printed once, by the process that creates it)."""
        settings = self.services.settings
        identity = self.services.identity
        if settings.auth_mode != "token":
            return
        await asyncio.to_thread(identity.keys.ensure)
        await asyncio.to_thread(identity.keys.refresh)
        if await identity.accounts.count_admins():
            return
        username = settings.admin_username or "admin"
        password = settings.admin_password.get_secret_value()
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        if not await identity.accounts.ensure_admin(username, password):
            return
        if generated:
            path = settings.data_dir.resolve() / "admin-password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            log.warning(
                "created the first admin: username %r, password %r (also in %s; change it with "
                "'dockyard user passwd')",
                username,
                password,
                path,
            )
        else:
            log.warning("created the first admin %r from settings", username)

    async def shutdown(self) -> None:
        self._jobs_stop.set()  # running jobs get a grace period, then go back to the queue
        if self._jobs is not None:
            try:
                await self._jobs
            except Exception:
                log.exception("background jobs ended with an error")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sibling is not None:
            await self._sibling.stop()
        await self.archives.close()
        await self.services.close()
        if self.access_lines is not None:
            self.access_lines.flush()

    async def _gc_loop(self) -> None:
        interval = self.services.settings.gc_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                if await leases.acquire(self.services.db, "gc", self._holder, max(interval, 60.0)):
                    await self.services.gc.run()
                    purge_before = time.time() - self.services.settings.upload_purge_seconds
                    await self.services.archive_purge.run(purge_before)
            except Exception:
                log.exception("periodic garbage collection failed; retrying next period")

    async def healthz(self, request: Request) -> Response:
        try:
            async with self.services.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(self, request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


def create_app(settings: Settings) -> Dockyard:
    return Dockyard(build_services(settings))


def from_environment() -> Dockyard:
    """Factory for server worker processes: settings come from ``DOCKYARD_*`` variables."""
    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)
