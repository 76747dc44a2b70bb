"""The GA4GH Tool Registry Service v2 (``/ga4gh/trs/v2``) over the catalog's tool images.

Read-only. Callers are who ``/api/v1`` says they are (:mod:`dockyard.api.deps`: anonymous,
HTTP Basic, ``Bearer`` personal or robot token, the web session): anonymous callers see
public tools; a private tool is invisible to whoever may not see it, answered 404 exactly
as a tool that does not exist, and never listed. Every answer that is not a result is a TRS
``Error`` (``{"code", "message"}``): bad query values 400 (:mod:`.params`), bad credentials
401, unknown tools, versions, descriptors and paths 404. Descriptor endpoints always answer
404 for a tool the caller sees: Dockyard's tools are images without descriptors.

The tool list pages with ``offset``/``limit`` and answers the spec's paging headers
(``next_page``, ``last_page``, ``self_link``, ``current_offset``, ``current_limit``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, cast
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from dockyard.api.deps import Authenticator, Caller
from dockyard.api.trs import params
from dockyard.api.trs.views import TOOL_CLASS, Json, containerfile, tool_document, tool_version
from dockyard.auth.errors import AuthenticationFailed, Throttled
from dockyard.catalog.tools import ToolFilters, Tools
from dockyard.errors import DomainError, Forbidden, Invalid, NotFound
from dockyard.tenancy.services import Identity

PREFIX = "/ga4gh/trs/v2"
TRS_VERSION = "2.0.1"
log = logging.getLogger("dockyard.trs")

STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    AuthenticationFailed: 401,
    Forbidden: 403,
    NotFound: 404,
    Throttled: 429,
}


@dataclass(frozen=True)
class TrsServices:
    """What the endpoint serves from: the tools, the public URL (may be empty), Dockyard's version."""

    tools: Tools
    public_url: str
    version: str


def _services(request: Request) -> TrsServices:
    return cast(TrsServices, request.app.state.trs)


Services = Annotated[TrsServices, Depends(_services)]


def error(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=code, headers=headers)


def _base(request: Request, services: TrsServices) -> str:
    """This endpoint's URL as clients name it: from DOCKYARD_PUBLIC_URL, else the request."""
    if services.public_url:
        return services.public_url.rstrip("/") + PREFIX
    return f"{request.url.scheme}://{request.url.netloc}{PREFIX}"


def _registry_host(request: Request, services: TrsServices) -> str:
    return urlsplit(services.public_url).netloc if services.public_url else request.url.netloc


def _filters(request: Request) -> tuple[ToolFilters, bool]:
    """The list's filters, and whether they already leave nothing (values no tool has)."""
    q = request.query_params
    text = {
        key: params.text_of(key, q.get(key))
        for key in ("id", "alias", "toolClass", "descriptorType", "registry")
    }
    texts = {
        key: params.text_of(key, q.get(key)) for key in ("name", "toolname", "organization", "description")
    }
    author = params.text_of("author", q.get("author"))
    nothing = (
        text["alias"] is not None  # Dockyard's tools have no aliases
        or text["descriptorType"] is not None  # nor descriptors
        or text["toolClass"] not in (None, TOOL_CLASS["id"], TOOL_CLASS["name"])
        or (
            text["registry"] is not None
            and text["registry"] != _registry_host(request, request.app.state.trs)
        )
        or author is not None  # authors are per version; no filter on them yet
    )
    filters = ToolFilters(
        tool_id=text["id"],
        name=texts["name"],
        toolname=texts["toolname"],
        organization=texts["organization"],
        description=texts["description"],
        checker=params.flag_of("checker", q.get("checker")),
    )
    return filters, nothing


def _page_url(request: Request, base: str, offset: int, limit: int) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    return f"{base}/tools?{urlencode([*kept, ('offset', str(offset)), ('limit', str(limit))])}"


async def service_info(request: Request, services: Services) -> Json:
    base = _base(request, services)
    host = urlsplit(base).hostname or "localhost"
    return {
        "id": ".".join(reversed(host.split("."))) + ".dockyard.trs",  # reverse domain notation
        "name": "Dockyard Tool Registry Service",
        "type": {"group": "org.ga4gh", "artifact": "trs", "version": TRS_VERSION},
        "description": "Container images of Dockyard's catalog as GA4GH tools (images without descriptors).",
        "organization": {"name": "Dockyard", "url": base.removesuffix(PREFIX) or base},
        "version": services.version,
    }


async def tool_classes() -> list[Json]:
    return [TOOL_CLASS]


async def list_tools(request: Request, services: Services, actor: Caller) -> Response:
    offset = params.offset_of(request.query_params.get("offset"))
    limit = params.limit_of(request.query_params.get("limit"))
    filters, nothing = _filters(request)
    base, host = _base(request, services), _registry_host(request, services)
    if nothing:
        items: list[Json] = []
        total = 0
    else:
        page = await services.tools.search(actor, filters, limit=limit, offset=offset)
        items = [tool_document(base, tool, host) for tool in page.items]
        total = page.total
    last = max(0, (total - 1) // limit * limit)
    headers = {
        "self_link": _page_url(request, base, offset, limit),
        "last_page": _page_url(request, base, last, limit),
        "current_offset": str(offset),
        "current_limit": str(limit),
        "x-total-count": str(total),
    }
    if offset + limit < total:
        headers["next_page"] = _page_url(request, base, offset + limit, limit)
    return JSONResponse(items, headers=headers)


async def get_tool(id: str, request: Request, services: Services, actor: Caller) -> Json:
    tool = await services.tools.get(actor, id)
    return tool_document(_base(request, services), tool, _registry_host(request, services))


async def get_versions(id: str, request: Request, services: Services, actor: Caller) -> list[Json]:
    tool = await services.tools.get(actor, id)
    base, host = _base(request, services), _registry_host(request, services)
    return [tool_version(base, tool, version, host) for version in tool.versions]


async def get_version(id: str, version_id: str, request: Request, services: Services, actor: Caller) -> Json:
    tool, version = await services.tools.version(actor, id, version_id)
    return tool_version(_base(request, services), tool, version, _registry_host(request, services))


async def get_containerfile(id: str, version_id: str, services: Services, actor: Caller) -> list[Json]:
    tool, version = await services.tools.version(actor, id, version_id)
    found = containerfile(tool, version)
    if not found:
        raise NotFound(f"no Dockerfile is known for {id}:{version_id} (it was not built by Dockyard)")
    return found


async def descriptor(id: str, version_id: str, type: str, services: Services, actor: Caller) -> Json:
    await services.tools.version(actor, id, version_id)  # a tool the caller cannot see is not found
    raise NotFound(
        f"{id}:{version_id} has no {type[:40]} descriptor: it is a container image without descriptors "
        "(its descriptor_type is empty); run the image named in its images"
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    code = next((status for kind, status in STATUS.items() if isinstance(exc, kind)), 400)
    headers = {"WWW-Authenticate": 'Bearer realm="dockyard"'} if code == 401 else None
    return error(code, str(exc), headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such TRS endpoint" if exc.status_code == 404 else str(exc.detail)
    return error(exc.status_code, message, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error(400, "; ".join(str(e.get("msg", "")) for e in exc.errors()) or "invalid request")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, "Internal Server Error")


def create_trs(identity: Identity, services: TrsServices) -> FastAPI:
    """The TRS application, to be mounted at :data:`PREFIX` (OpenAPI at ``/openapi.json``)."""
    app = FastAPI(
        title="Dockyard GA4GH Tool Registry Service",
        version=TRS_VERSION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.identity = identity
    app.state.authenticator = Authenticator(identity)
    app.state.trs = services
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    version = "/tools/{id:path}/versions/{version_id}"
    routes: list[tuple[str, Any]] = [
        ("/service-info", service_info),
        ("/toolClasses", tool_classes),
        ("/tools", list_tools),
        (f"{version}/containerfile", get_containerfile),
        (f"{version}/{{type}}/descriptor/{{relative_path:path}}", descriptor),
        (f"{version}/{{type}}/descriptor", descriptor),
        (f"{version}/{{type}}/tests", descriptor),
        (f"{version}/{{type}}/files", descriptor),
        (version, get_version),
        ("/tools/{id:path}/versions", get_versions),
        ("/tools/{id:path}", get_tool),
    ]
    for path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=["GET"])
    for route in app.router.routes:  # a tool id with a line break (%0A) is not found, as any other
        if isinstance(route, APIRoute):
            route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return app
