"""Lineage: a version's base image and its children, rebuilding on an updated base.

GET  /images/{name}/versions/{version}/lineage   the base (or "one you cannot see") and a
                                                 first page of children
GET  /images/{name}/versions/{version}/children  children, paged (limit, offset)
POST /images/{name}/versions/{version}/rebuild   queue a run of the definition that built it
                                                 (maintainers)          -> 201 the run
GET  /builds/{name}/rebuild-on-base-update       the definition's setting
PUT  /builds/{name}/rebuild-on-base-update       set it (maintainers)
POST /lineage/backfill                           record the lineage of versions inspected
                                                 before it existed (admins) -> 202
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel

from dockyard.api.deps import Caller
from dockyard.api.v1.catalog import Services
from dockyard.api.v1.inputs import Name, Offset, Text
from dockyard.builds.rebuilds import RebuildSetting
from dockyard.builds.views import RunView
from dockyard.catalog.lineage_views import ChildPage, LineageView
from dockyard.errors import Forbidden, NotFound

router = APIRouter(tags=["catalog"])
T = TypeVar("T")


class Setting(BaseModel):
    rebuild_on_base_update: bool


def _needed(found: T | None, what: str) -> T:
    if found is None:
        raise NotFound(f"{what} is not enabled on this server")
    return found


@router.get("/images/{name:path}/versions/{version}/lineage", summary="The version's base image and children")
async def lineage(name: Text, version: Name, services: Services, actor: Caller) -> LineageView:
    return await _needed(services.lineage, "lineage").of(actor, name, version)


@router.get("/images/{name:path}/versions/{version}/children", summary="Versions built on this one, paged")
async def children(
    name: Text,
    version: Name,
    services: Services,
    actor: Caller,
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> ChildPage:
    return await _needed(services.lineage, "lineage").children(actor, name, version, limit, offset)


@router.post(
    "/images/{name:path}/versions/{version}/rebuild",
    status_code=201,
    summary="Build the version again with the definition that built it (maintainers)",
)
async def rebuild(name: Text, version: Name, services: Services, actor: Caller) -> RunView:
    return await _needed(services.rebuilds, "building").rebuild(actor, name, version)


@router.get("/builds/{name:path}/rebuild-on-base-update", summary="Whether a newer base queues a rebuild")
async def get_setting(name: Text, services: Services, actor: Caller) -> RebuildSetting:
    return await _needed(services.rebuilds, "building").setting(actor, name)


@router.put(
    "/builds/{name:path}/rebuild-on-base-update", summary="Rebuild by itself on a newer base (maintainers)"
)
async def set_setting(name: Text, body: Setting, services: Services, actor: Caller) -> RebuildSetting:
    return await _needed(services.rebuilds, "building").set_setting(actor, name, body.rebuild_on_base_update)


@router.post("/lineage/backfill", status_code=202, summary="Record the lineage of older versions (admins)")
async def backfill(services: Services, actor: Caller) -> dict[str, int]:
    if not actor.is_admin:
        raise Forbidden("only admins may start the lineage backfill")
    job_id = await _needed(services.lineage_backfill, "lineage").start()
    return {"job_id": job_id}
