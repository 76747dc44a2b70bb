"""The software inside a version: the packages its filesystem declares (``catalog/packages.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller
from dockyard.api.v1.catalog import Services
from dockyard.api.v1.inputs import Name, Text
from dockyard.archive.packages import Ecosystem
from dockyard.catalog.packages import MAX_PAGE, PackagePage
from dockyard.errors import NotFound

router = APIRouter(tags=["catalog"])


class PackagesQuery(BaseModel):
    ecosystem: Ecosystem | None = None
    q: Name | None = Field(None, description="Part of the package name (any case).")
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    last: Text | None = Field(None, description="The `next` of the previous page.")


@router.get(
    "/images/{name:path}/versions/{version}/packages",
    summary="The packages a version's filesystem declares (deb, apk, rpm, conda, python, r), a page",
    description=(
        "Indexed when the version is inspected: each platform's layers are read (whiteouts "
        "honoured). `scan` says how the reading went (`succeeded`, `partial` with what was "
        "not read, `failed` with why), or is null before the first scan. Ordered by ecosystem, "
        "name, version, platform; pass `next` as `last` for the following page."
    ),
)
async def list_packages(
    name: Text,
    version: Name,
    services: Services,
    actor: Caller,
    params: Annotated[PackagesQuery, Query()],
) -> PackagePage:
    if services.packages is None:
        raise NotFound("packages are not indexed on this server")
    return await services.packages.list(
        actor,
        name,
        version,
        ecosystem=params.ecosystem,
        query=params.q,
        limit=params.limit,
        last=params.last,
    )
