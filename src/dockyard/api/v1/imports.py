"""Imports by URL: an external version copied into Dockyard's storage::

POST /images/{name}/versions/{v}/import   {"platforms": [...]} start (push permission) -> 202
GET  /images/{name}/versions/{v}/import   the import: state, provenance, job progress
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints

from dockyard.api.deps import Caller
from dockyard.api.v1.catalog import CatalogServices, catalog_services
from dockyard.api.v1.inputs import Name, Text
from dockyard.catalog.imports import MAX_PLATFORMS, Imports, ImportView

router = APIRouter(tags=["catalog"])

Platform = Annotated[
    str, StringConstraints(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){1,2}$")
]


class ImportRequest(BaseModel):
    platforms: list[Platform] = Field(
        default_factory=list,
        max_length=MAX_PLATFORMS,
        description="Platforms to copy (os/arch[/variant]); none: all of them.",
    )


def imports_service(
    services: Annotated[CatalogServices, Depends(catalog_services)], request: Request
) -> Imports:
    if services.imports is None:
        raise HTTPException(404, "imports are not enabled")
    return services.imports


Service = Annotated[Imports, Depends(imports_service)]


@router.post(
    "/images/{name:path}/versions/{version}/import",
    status_code=202,
    summary="Import an external version into Dockyard's storage (push permission), as a job",
)
async def start_import(
    name: Text, version: Name, body: ImportRequest, service: Service, actor: Caller
) -> ImportView:
    return await service.start(actor, name, version, body.platforms)


@router.get(
    "/images/{name:path}/versions/{version}/import",
    summary="A version's import: state, where it came from, the job's progress",
)
async def get_import(name: Text, version: Name, service: Service, actor: Caller) -> ImportView:
    return await service.status(actor, name, version)
