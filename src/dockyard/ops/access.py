"""ASGI middleware: one JSON log line and metrics per request."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.ops.metrics import BYTES_SENT, LATENCY, REQUESTS

log = logging.getLogger("dockyard.access")


def route_of(path: str) -> str:
    """A low-cardinality label for a path (never the repository name)."""
    if not path.startswith("/v2"):
        return path.split("/", 3)[1] if path.count("/") else path
    for marker in ("/blobs/uploads", "/blobs/", "/manifests/", "/tags/list", "/referrers/"):
        if marker in path:
            return "v2" + marker.rstrip("/")
    return "v2_catalog" if path.endswith("_catalog") else "v2"


class AccessLog:
    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        length = 0

        async def observing_send(message: Message) -> None:
            nonlocal status, length
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"content-length":
                        length = int(value)
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope["path"])
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            BYTES_SENT.labels(route).inc(length)
            if self.enabled and log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                log.info(
                    json.dumps(
                        {
                            "ts": round(time.time(), 3),
                            "method": method,
                            "path": scope["path"],
                            "status": status,
                            "bytes": length,
                            "ms": round(elapsed * 1000, 2),
                            "client": client[0] if client else None,
                        }
                    )
                )
