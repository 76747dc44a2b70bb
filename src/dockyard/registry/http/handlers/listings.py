"""Lists: tags, the catalog and referrers."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from starlette.types import Send

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.names import MAX_NAME_LENGTH, MAX_TAG_LENGTH
from dockyard.registry.events import Actor
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.errors import ErrorCode, RegistryError
from dockyard.registry.http.request import Request
from dockyard.registry.http.responses import send_json

MAX_PAGE = 10000
# ASCII digits only (str.isdigit also takes "\u00b2"), and few enough for int() and the DB.
_PAGE_RE = re.compile(r"[0-9]{1,9}")


def _page(req: Request) -> int | None:
    raw = req.query.get("n")
    if raw is None:
        return None
    if _PAGE_RE.fullmatch(raw) is None:
        raise RegistryError(
            ErrorCode.PAGINATION_NUMBER_INVALID, f"n must be a non-negative integer, not {raw[:20]!r}"
        )
    return min(int(raw), MAX_PAGE)


def _last(req: Request, longest: int) -> str | None:
    """The ``last`` cursor, as one that selects the same entries and is safe for the database.

    Entries after ``last`` are those greater in code point order (the databases compare
    bytewise, and UTF-8 keeps that order). No entry holds a NUL and none is longer than
    ``longest``, so cutting ``last`` at its first NUL, then to ``longest`` characters, selects
    exactly the same entries: a client may pass any string, as with CNCF Distribution, but
    PostgreSQL (which refuses a NUL in text) only ever sees a short clean one.
    """
    last = req.query.get("last")
    if not last:
        return None
    return last.split("\x00", 1)[0][:longest] or None


def _link(path: str, n: int, last: str) -> dict[str, str]:
    return {"Link": f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'}


async def list_tags(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    name = req.params["name"]
    n, last = _page(req), _last(req, MAX_TAG_LENGTH)
    found = await ctx.manifests.tags(name, None if n is None else n + 1, last)
    headers: dict[str, str] = {}
    if n is not None and len(found) > n:
        found = found[:n]
        headers = _link(f"/v2/{name}/tags/list", n, found[-1]) if found else {}
    await send_json(send, 200, {"name": name, "tags": found}, headers)


async def catalog(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    n, last = _page(req), _last(req, MAX_NAME_LENGTH)
    visible = ctx.authorizer.catalog_scope(actor.principal)  # what the caller may pull, in the query
    found = await ctx.manifests.catalog(None if n is None else n + 1, last, visible)
    headers: dict[str, str] = {}
    if n is not None and len(found) > n:
        found = found[:n]
        headers = _link("/v2/_catalog", n, found[-1]) if found else {}
    await send_json(send, 200, {"repositories": found}, headers)


async def referrers(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    subject = Digest.parse(req.params["digest"])
    artifact_type = req.query.get("artifactType") or None
    descriptors = await ctx.manifests.referrers(req.params["name"], subject, artifact_type)
    headers = {"Content-Type": mt.OCI_INDEX}
    if artifact_type:
        headers["OCI-Filters-Applied"] = "artifactType"
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
    await send_json(send, 200, index, headers)
