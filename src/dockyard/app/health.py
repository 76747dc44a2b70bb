"""``/healthz`` (whether the database answers, and how many of the registry's outbox events
keep failing) and ``/metrics`` (Prometheus text, summed over
the server processes when there are several), served beside the API by
:class:`dockyard.app.asgi.Dockyard`."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.db.engine import Database
from dockyard.ops import metrics
from dockyard.registry.outbox import failing


def health_routes(db: Database) -> list[Route]:
    """The two routes; ``/healthz`` answers 503 with the database's error when it does not answer."""

    async def healthz(request: Request) -> Response:
        try:
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
                stuck = await failing(conn)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
        # Still retried, but their versions are not in the catalog yet: an operator should look.
        return JSONResponse({"status": "ok", "registry_outbox_failing": stuck})

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return [Route("/healthz", healthz), Route("/metrics", metrics_endpoint)]
