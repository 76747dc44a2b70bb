"""The /api/v1 application (FastAPI): OpenAPI at /api/v1/openapi.json, errors as problems."""

from __future__ import annotations

from fastapi import FastAPI

from dockyard.api import docs, problems
from dockyard.api.deps import Authenticator
from dockyard.api.v1 import (
    archives,
    audit,
    builds,
    caches,
    downloads,
    imports,
    lineage,
    marks,
    packages,
    quotas,
    references,
    regions,
    registries,
    repositories,
    requests,
    retention,
    robots,
    search,
    session,
    users,
    webhooks,
    workspaces,
)
from dockyard.api.v1 import (
    catalog as catalog_routes,
)
from dockyard.api.v1.archives import ArchiveServices
from dockyard.api.v1.catalog import CatalogServices
from dockyard.api.v1.retention import RetentionServices
from dockyard.builds.service import BuildService
from dockyard.marks.service import TrustMarks
from dockyard.registry.quota_admin import Quotas
from dockyard.tenancy.services import Identity
from dockyard.transfer.exports.service import Exports
from dockyard.upstream.cache_admin import CacheAdmin
from dockyard.webhooks.service import Webhooks


def create_api(
    identity: Identity,
    catalog: CatalogServices,
    version: str,
    *,
    exports: Exports,
    archive_services: ArchiveServices,
    quota_service: Quotas,
    build_service: BuildService | None = None,
    retention_services: RetentionServices | None = None,
    webhook_service: Webhooks | None = None,
    cache_service: CacheAdmin | None = None,
    trust_marks: TrustMarks | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Dockyard API",
        version=version,
        description=(
            "Manage users, tokens, robot accounts, workspaces, members, teams, repository "
            "permissions and access requests. Authenticate with HTTP Basic (username and "
            "password or personal access token) or `Authorization: Bearer <personal access token>`."
        ),
        openapi_url="/openapi.json",
        docs_url=None,  # served by api.docs, without a CDN
        redoc_url=None,
    )
    docs.install(app, "/api/v1")
    app.state.identity = identity
    app.state.authenticator = Authenticator(identity)
    app.state.catalog = catalog
    app.state.exports = exports
    app.state.archives = archive_services
    app.state.builds = build_service
    app.state.retention = retention_services
    app.state.quotas = quota_service
    app.state.webhooks = webhook_service
    app.state.caches = cache_service
    app.state.marks = trust_marks
    problems.install(app)
    archives.install_problems(app)
    # Routes match in the order they are added: the catalog's catch-all /images/{name:path}
    # must come after every more specific /images/... route of other routers.
    for module in (
        session,
        references,
        users,
        workspaces,
        quotas,
        *([caches] if cache_service is not None else []),
        robots,
        *([webhooks] if webhook_service is not None else []),
        repositories,
        requests,
        audit,
        archives,
        downloads,
        registries,
        imports,
        regions,
        *([marks] if trust_marks is not None else []),
        lineage,
        packages,
        search,
        catalog_routes,
        *([builds] if build_service is not None else []),
        *([retention] if retention_services is not None else []),
    ):
        app.include_router(module.router)
    return app
