"""Search: images by words, packages, labels and facets, as the caller may see them."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from dockyard.api.deps import Caller
from dockyard.api.v1.catalog import Services
from dockyard.api.v1.inputs import no_nul
from dockyard.catalog.search import MAX_LIMIT, MAX_OFFSET, Results, Search
from dockyard.catalog.search_query import MAX_QUERY, MAX_TERMS

router = APIRouter(tags=["catalog"])

QUERY_HELP = (
    f"Up to {MAX_QUERY} characters, {MAX_TERMS} terms, separated by spaces (quotes group words): "
    "bare words are searched in names, descriptions, labels, annotations, image history and "
    "Dockerfiles; `samtools>=1.19`, `python=3.11` (also `==`, `<=`, `>`, `<`, `!=`; `=` matches "
    "a version prefix) or `pkg:samtools` match the packages installed in a version; "
    "`label:key=value` (`*` a glob; `label:key` any value) a label or annotation; "
    "`workspace:NAME`, `source:internal|external|cached`, `type:tool|bench`, "
    "`platform:linux/amd64` narrow the results. Version terms hold for one version together."
)


@router.get(
    "/search",
    summary="Search the catalog",
    description="Images the caller may see that match the query, best first (then by name), "
    "with their matching versions (up to 20 each), the number of matches and facet counts "
    "(workspace, source, type, platform) over all of them. Each image has its trust `marks` (as "
    "on GET /api/v1/images/{name}: its workspace's official, verified or user, and dockerfile, "
    "built, signed, sbom when a version has them) and, when the query has package terms, the "
    "`packages` they found in its matching versions (name, version, ecosystem; up to 20): why it "
    "matched. A query that cannot be read is a 422 problem naming the term.",
)
async def search(
    services: Services,
    caller: Caller,
    q: Annotated[
        str,
        Query(min_length=1, max_length=MAX_QUERY, description=QUERY_HELP),
        AfterValidator(no_nul),
    ],
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Results:
    found = await Search(services.catalog.db)(caller, q, limit, offset)
    if services.marks is None or not found.items:
        return found
    # The page's marks in one batch (two queries), for images the caller already sees.
    marks = await services.marks.of_images(caller, [item.name for item in found.items])
    items = [dataclasses.replace(item, marks=marks.get(item.name)) for item in found.items]
    return dataclasses.replace(found, items=items)
