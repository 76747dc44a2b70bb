"""The ASGI application of a server process, on services built by :mod:`dockyard.app.services`.

:class:`Dockyard` owns the HTTP edges and the dispatch between them: ``/v2`` goes to the
registry's thin router, everything else (``/healthz``, ``/metrics``, the token endpoint,
``/api/v1``, ``/ga4gh/trs/v2``) to Starlette; both write the access log. It builds no service: each edge
receives the ones it serves from :class:`~dockyard.app.services.Services`. Start-up and
shutdown are :class:`~dockyard.app.lifespan.Lifespan`'s.

Python's cyclic garbage collector in a server process: once start-up is done, a server worker
collects once and freezes what is left (``gc.freeze()``: ~175,000 objects of the imported
libraries and the wired services, which live as long as the process), so that a full
collection walks only what requests create, not the whole program. Before this, full
collections of 70-100 ms came about once a second under load and set the manifest p99;
measured since (``gc.callbacks`` in a worker, 16 s of manifest HEAD and GET at 64
connections): no full collection at all after the freeze, and young ones at most ~0.5 ms of
CPU. The collection thresholds stay CPython's (700, 10, 10): a larger first threshold would
make fewer but longer young collections, and each looks at the same objects once either way.
What keeps it so is that a request leaves nothing in reference cycles (only the collector
frees those): ``tests/unit/app/test_serving_cycles.py`` holds the server's protocol, the access
log, the token check and the registry's router to it, and what every process polls each
second (the job queue, the webhook outbox) builds its cycle-making clauses once.
"""

from __future__ import annotations

import gc
import re

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard import __version__
from dockyard.api.rest import create_api
from dockyard.api.token_endpoint import TokenEndpoint
from dockyard.api.trs.app import PREFIX as TRS_PREFIX
from dockyard.api.trs.app import TrsServices, create_trs
from dockyard.api.v1.archives import ArchiveServices
from dockyard.api.v1.catalog import CatalogServices
from dockyard.api.v1.retention import RetentionServices
from dockyard.app.health import health_routes
from dockyard.app.lifespan import Lifespan, serve_lifespan
from dockyard.app.services import Services, build_services
from dockyard.ops import logs, metrics
from dockyard.ops.access import AccessLog, LineBuffer
from dockyard.ops.forwarded import parse_networks, with_client
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.router import RegistryApp
from dockyard.settings import Settings
from dockyard.web.app import WebUI


def build_api(services: Services) -> FastAPI:
    """``/api/v1`` (FastAPI) on the services' identity, catalog, archive and build services."""
    catalog = CatalogServices(
        services.catalog,
        services.verification,
        services.usage,
        services.credentials,
        services.settings.public_url,
        services.deletions,
        services.immutability,
        services.registries,
        services.imports,
        marks=services.marks.views,
        lineage=services.lineage,
        rebuilds=services.rebuilds,
        lineage_backfill=services.lineage_backfill,
        packages=services.packages,
    )
    api = create_api(
        services.identity,
        catalog,
        __version__,
        exports=services.exports,
        archive_services=ArchiveServices(services.archives, services.archive_versions),
        quota_service=services.quotas,
        build_service=services.builds,
        retention_services=RetentionServices(services.retention, services.retention_runner),
        webhook_service=services.webhooks,
        cache_service=services.cache_admin,
        trust_marks=services.marks,
    )
    api.state.regions = services.regions.service
    return api


def build_trs(services: Services) -> FastAPI:
    """``/ga4gh/trs/v2`` on the catalog's tools, with ``/api/v1``'s authentication."""
    trs = TrsServices(services.tools, services.settings.public_url, __version__)
    return create_trs(services.identity, trs)


def mount_every_path(prefix: str, app: ASGIApp) -> Mount:
    """A mount that takes every path under ``prefix``, line breaks (``%0A``) too: Starlette's
    ``.*`` stops at one, which would hand the request to the web UI's plain-text 404."""
    mount = Mount(prefix, app)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


class Dockyard:
    """The ASGI application: /v2 goes to the registry's thin router, the rest to Starlette."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.access_lines = LineBuffer() if settings.access_log else None
        ctx = RegistryContext(
            services.blobs,
            services.uploads,
            services.manifests,
            services.authorizer,
            services.pulls,
            services.cache,
        )
        self.registry = AccessLog(RegistryApp(ctx), self.access_lines)
        self.api = build_api(services)
        token_routes = TokenEndpoint(services.identity).routes()
        # /auth/token straight from here (a token request per pull): Starlette's middleware
        # stack was a fifth of a cached token's answer. /auth/jwks.json stays with the rest.
        self.token = AccessLog(Router(routes=token_routes), self.access_lines)
        routes = [
            *health_routes(services.db),
            *token_routes,
            mount_every_path("/api/v1", self.api),  # a line break in a path too: problem+json
            mount_every_path(TRS_PREFIX, build_trs(services)),  # GA4GH TRS v2: the catalog's tools
            Mount("/", WebUI(__version__)),  # the web UI: /, /static and its page paths (last)
        ]
        self.web = AccessLog(Starlette(routes=routes), self.access_lines)
        self.lifespan = Lifespan(services, self)
        # Set by the server process (dockyard.app.serving), never in tests that build many apps.
        self.freeze_gc = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            scope = with_client(scope, self.trusted_proxies)
            path: str = scope["path"]
            if path == "/v2" or path.startswith("/v2/"):
                await self.registry(scope, receive, send)
            elif path == "/auth/token":
                await self.token(scope, receive, send)
            else:
                await self.web(scope, receive, send)
        elif kind == "lifespan":
            await serve_lifespan(receive, send, self.startup, self.shutdown)

    async def startup(self) -> None:
        await self.lifespan.startup()
        if self.freeze_gc:
            # Everything built so far lives as long as the process: moved out of the
            # collector's sight, so that full collections (once a second under load) walk
            # only what requests create, not the ~1 M objects of the imported libraries.
            gc.collect()
            gc.freeze()

    async def shutdown(self) -> None:
        await self.lifespan.shutdown()
        metrics.TALLY.flush()
        if self.access_lines is not None:
            self.access_lines.flush()


def create_app(settings: Settings) -> Dockyard:
    """The app for ``settings``, on services built for it (started by its lifespan)."""
    return Dockyard(build_services(settings))


def from_environment() -> Dockyard:
    """Factory for server worker processes: settings come from ``DOCKYARD_*`` variables."""
    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)
