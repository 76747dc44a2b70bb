"""``/api/v1/docs``: Swagger UI, with its script and style sheet served by Dockyard itself
(from the pinned ``swagger-ui-bundle-v2`` package), so that the page works offline and loads
nothing from another origin."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

ASSETS: Path = Path(str(swagger_ui_bundle.swagger_ui_path))
FILES = {  # what the page loads: name -> media type
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install(app: FastAPI, prefix: str) -> None:
    """The docs page and its files; ``prefix`` is where ``app`` is mounted (``/api/v1``)."""

    async def page(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{prefix}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{prefix}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{prefix}/docs/assets/favicon-32x32.png",
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in FILES:
            raise HTTPException(404, f"no docs asset {name[:80]!r}")
        return FileResponse(
            ASSETS / name, media_type=FILES[name], headers={"Cache-Control": "public, max-age=86400"}
        )

    app.router.routes.append(Route("/docs", page, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route("/docs/assets/{name}", asset, methods=["GET"], include_in_schema=False))
