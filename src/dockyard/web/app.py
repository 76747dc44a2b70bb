"""Serve the web UI: the one HTML shell for every page path, and the static files.

The shell is the same for every page (the browser-side router draws the page); it is built
once at start-up with its import map, and the Content-Security-Policy allows that inline map
by its hash and nothing else inline. Static files are served by Starlette's ``StaticFiles``
from the package folder (no symlinks followed) with ETags; the shell is never cached, so a
new release is picked up on the next load.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
# The first path segments the UI's pages live under; everything else (/api, /auth, /v2,
# /healthz, /metrics) is not the UI's.
PAGES = ("signin", "repository", "images", "builds", "access", "workspaces", "admin", "account")
VENDOR = ("preact.mjs", "hooks.mjs", "htm.mjs")
IMPORTS = {
    "preact": "/static/vendor/preact.mjs",
    "preact/hooks": "/static/vendor/hooks.mjs",
    "htm": "/static/vendor/htm.mjs",
}
MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dockyard</title></head>
<body><h1>Dockyard</h1><p>The web UI's packages are not installed in this copy of Dockyard.
Run <code>scripts/setup.sh runtime</code> (or start it with <code>scripts/serve.sh</code>),
then reload this page. The registry (<code>/v2</code>) and the API (<code>/api/v1</code>)
work without them.</p></body></html>"""


def _shell(version: str) -> tuple[str, str]:
    """The page shell and its Content-Security-Policy."""
    import_map = json.dumps({"imports": {k: f"{v}?v={version}" for k, v in IMPORTS.items()}})
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dockyard</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css?v={version}">
<script type="importmap">{import_map}</script>
<script type="module" src="/static/app.js?v={version}"></script>
</head>
<body>
<div id="app"><p class="boot">Loading Dockyard…</p></div>
<noscript><p>Dockyard's web UI needs JavaScript. The CLI (<code>dockyard --help</code>) and the
API (<a href="/api/v1/docs">/api/v1/docs</a>) do not.</p></noscript>
</body>
</html>
"""
    csp = (
        "default-src 'self'; "
        f"script-src 'self' 'sha256-{digest}'; "
        "style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return page, csp


class WebUI:
    """The ASGI application of the UI; :meth:`handles` tells the dispatcher which paths are its."""

    def __init__(self, version: str, static: Path = STATIC) -> None:
        self.installed = all((static / "vendor" / name).is_file() for name in VENDOR)
        self.page, self.csp = _shell(version)
        routes = [Route("/", self._index), Mount("/static", StaticFiles(directory=static), name="static")]
        routes += [Route(f"/{first}{{rest:path}}", self._index) for first in PAGES]
        self.app = Starlette(routes=routes)

    @staticmethod
    def handles(path: str) -> bool:
        if path == "/" or path.startswith("/static/"):
            return True
        first = path[1:].split("/", 1)[0]
        return first in PAGES

    async def _index(self, request: Request) -> Response:
        headers = {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        if not self.installed:
            return HTMLResponse(MISSING, status_code=503, headers=headers)
        return HTMLResponse(self.page, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
