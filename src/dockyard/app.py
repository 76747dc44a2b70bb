"""Composition root: ``create_app(settings)`` builds every service and wires the layers.

The only module that imports every layer. Nothing else holds module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dockyard.auth.basic import AdminAuthorizer
from dockyard.db import leases
from dockyard.db.engine import Database
from dockyard.ops import logs, metrics
from dockyard.ops.access import AccessLog, LineBuffer
from dockyard.registry.blobs import BlobService
from dockyard.registry.cache import Generations, PostgresGenerations, SharedMemoryGenerations
from dockyard.registry.events import EventBus
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.router import RegistryApp
from dockyard.registry.manifests import ManifestService
from dockyard.registry.upload_locks import FileUploadLocks, PostgresUploadLocks, UploadLocks
from dockyard.registry.uploads import UploadService
from dockyard.settings import Settings
from dockyard.storage.base import StorageDriver
from dockyard.storage.factory import create_driver

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
    uploads = UploadService(db, storage, blobs, build_upload_locks(settings, db))
    manifests = ManifestService(db, events, settings.max_manifest_bytes, generations)
    gc = GarbageCollector(
        db, storage, uploads, generations, settings.gc_grace_seconds, settings.upload_purge_seconds
    )
    return Services(settings, db, storage, events, generations, blobs, uploads, manifests, gc)


class Dockyard:
    """The ASGI application: /v2 goes to the registry's thin router, the rest to Starlette."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        authorizer = AdminAuthorizer(
            settings.auth_mode, settings.admin_username, settings.admin_password.get_secret_value()
        )
        ctx = RegistryContext(services.blobs, services.uploads, services.manifests, authorizer)
        self.access_lines = LineBuffer() if settings.access_log else None
        self.registry = AccessLog(RegistryApp(ctx), self.access_lines)
        self.web = AccessLog(
            Starlette(routes=[Route("/healthz", self.healthz), Route("/metrics", self.metrics_endpoint)]),
            self.access_lines,
        )
        self._holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._tasks: list[asyncio.Task[None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
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
        if self.services.settings.gc_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._gc_loop()))

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.services.generations.stop()
        await self.services.db.dispose()
        if self.access_lines is not None:
            self.access_lines.flush()

    async def _gc_loop(self) -> None:
        interval = self.services.settings.gc_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                if await leases.acquire(self.services.db, "gc", self._holder, max(interval, 60.0)):
                    await self.services.gc.run()
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
