"""Regions: where a version's blobs are kept::

GET    /regions                                       configured regions (bytes held: admins)
GET    /images/{name}/versions/{v}/regions            the version's regions, each with its status
POST   /images/{name}/versions/{v}/regions            {"region": "us"} add: a copy job (maintainers) -> 202
DELETE /images/{name}/versions/{v}/regions/{region}   remove (maintainers); the last one stays: 409
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, StringConstraints

from dockyard.api.deps import Caller
from dockyard.api.v1.inputs import Name, Text
from dockyard.regions.service import RegionService
from dockyard.regions.views import RegionUsage, VersionRegions

router = APIRouter(tags=["regions"])

RegionName = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class AddRegion(BaseModel):
    region: RegionName


def region_service(request: Request) -> RegionService:
    found: RegionService | None = getattr(request.app.state, "regions", None)
    if found is None:
        raise HTTPException(404, "regions are not enabled")
    return found


Service = Annotated[RegionService, Depends(region_service)]


@router.get("/regions", summary="The configured regions; the blobs and bytes each holds (platform admins)")
async def list_regions(service: Service, actor: Caller) -> list[RegionUsage]:
    return await service.usage(actor)


@router.get("/images/{name:path}/versions/{version}/regions", summary="The regions a version lives in")
async def version_regions(name: Text, version: Name, service: Service, actor: Caller) -> VersionRegions:
    return await service.of_version(actor, name, version)


@router.post(
    "/images/{name:path}/versions/{version}/regions",
    status_code=202,
    summary="Add a region to a version: its blobs are copied there by a job (maintainers)",
)
async def add_region(
    name: Text, version: Name, body: AddRegion, service: Service, actor: Caller
) -> VersionRegions:
    return await service.add(actor, name, version, body.region)


@router.delete(
    "/images/{name:path}/versions/{version}/regions/{region}",
    summary="Remove a region from a version (maintainers); its last region cannot be removed",
)
async def remove_region(
    name: Text, version: Name, region: RegionName, service: Service, actor: Caller
) -> VersionRegions:
    return await service.remove(actor, name, version, region)
