"""The /api/v1 application (FastAPI): OpenAPI at /api/v1/openapi.json, errors as problems."""

from __future__ import annotations

from fastapi import FastAPI

from dockyard.api import problems
from dockyard.api.deps import Authenticator
from dockyard.api.v1 import (
    audit,
    repositories,
    requests,
    robots,
    users,
    workspaces,
)
from dockyard.api.v1 import (
    catalog as catalog_routes,
)
from dockyard.api.v1.catalog import CatalogServices
from dockyard.auth.services import Identity


def create_api(identity: Identity, catalog: CatalogServices, version: str) -> FastAPI:
    app = FastAPI(
        title="Dockyard API",
        version=version,
        description=(
            "Manage users, tokens, robot accounts, workspaces, members, teams, repository "
            "permissions and access requests. Authenticate with HTTP Basic (username and "
            "password or personal access token) or `Authorization: Bearer <personal access token>`."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.identity = identity
    app.state.authenticator = Authenticator(identity)
    app.state.catalog = catalog
    problems.install(app)
    for module in (users, workspaces, robots, repositories, requests, audit, catalog_routes):
        app.include_router(module.router)
    return app
