"""The /v2 ASGI application: match a route, check access, call the handler with who is asking,
and turn every refusal into the spec's error envelope in one place (:func:`.errors.translate`:
the edge's own :class:`~.errors.RegistryError`, every value the OCI grammar refused, and the
domain errors of the registry, of its door and of a full volume); any other exception is
logged and answered as ``UNKNOWN`` (500) in the same envelope."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from dockyard.auth.base import CATALOG, Access
from dockyard.oci.names import validate_hosted_name
from dockyard.registry.events import Actor
from dockyard.registry.http import errors
from dockyard.registry.http.context import RegistryContext
from dockyard.registry.http.errors import ErrorCode, RegistryError
from dockyard.registry.http.handlers import blobs, listings, manifests, uploads
from dockyard.registry.http.request import Request
from dockyard.registry.http.responses import send_bytes, send_json
from dockyard.registry.uploads import BodyInterrupted

log = logging.getLogger("dockyard.registry")

# The actor is the principal the door let in and the client's address: the services name it in
# the events they emit, the catalog lists what it may pull.
Handler = Callable[[RegistryContext, Request, Actor, Send], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    action: str | None  # repository action needed: pull, push, delete; None for special cases


async def _base(ctx: RegistryContext, req: Request, actor: Actor, send: Send) -> None:
    await send_json(send, 200, {})


_PULL, _PUSH, _DELETE = "pull", "push", "delete"
_NAME = r"(?P<name>[^?#]+?)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = [
    (re.compile(r"^/v2/?$"), {"GET": Endpoint(_base, None)}),
    (re.compile(r"^/v2/_catalog$"), {"GET": Endpoint(listings.catalog, None)}),
    (re.compile(rf"^/v2/{_NAME}/tags/list$"), {"GET": Endpoint(listings.list_tags, _PULL)}),
    (
        re.compile(rf"^/v2/{_NAME}/manifests/(?P<reference>[^/]+)$"),
        {
            "GET": Endpoint(manifests.get_manifest, _PULL),
            "PUT": Endpoint(manifests.put_manifest, _PUSH),
            "DELETE": Endpoint(manifests.delete_manifest, _DELETE),
        },
    ),
    (re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$"), {"POST": Endpoint(uploads.start_upload, _PUSH)}),
    (
        re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<upload>[^/]+)$"),
        {
            "GET": Endpoint(uploads.upload_status, _PUSH),
            "PATCH": Endpoint(uploads.patch_upload, _PUSH),
            "PUT": Endpoint(uploads.finish_upload, _PUSH),
            "DELETE": Endpoint(uploads.cancel_upload, _PUSH),
        },
    ),
    (
        re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$"),
        {"GET": Endpoint(blobs.get_blob, _PULL), "DELETE": Endpoint(blobs.delete_blob, _DELETE)},
    ),
    (re.compile(rf"^/v2/{_NAME}/referrers/(?P<digest>[^/]+)$"), {"GET": Endpoint(listings.referrers, _PULL)}),
]


def match(path: str, method: str) -> tuple[Endpoint, dict[str, str]]:
    for pattern, methods in ROUTES:
        found = pattern.match(path)
        if found is None:
            continue
        endpoint = methods.get("GET" if method == "HEAD" else method)
        if endpoint is None:
            allowed = sorted({*methods, *(["HEAD"] if "GET" in methods else [])})
            raise RegistryError(
                ErrorCode.UNSUPPORTED,
                f"{method} is not supported here",
                headers={"Allow": ", ".join(allowed)},
            )
        return endpoint, found.groupdict()
    raise RegistryError(ErrorCode.ROUTE_UNKNOWN, f"no registry endpoint at {path[:200]!r}")


def _accesses(endpoint: Endpoint, params: dict[str, str]) -> list[Access]:
    if endpoint.action == _PUSH:  # writes ask for pull too, as clients expect in the challenge
        return [Access.repository(params["name"], _PULL, _PUSH)]
    if endpoint.action is not None:
        return [Access.repository(params["name"], endpoint.action)]
    if endpoint.handler is listings.catalog:
        return [CATALOG]
    return []


def _writes(endpoint: Endpoint, params: dict[str, str]) -> bool:
    """A client's write that a pull-through cache refuses: uploads, manifest pushes, tag deletes
    (a manifest deleted by digest only frees the cache's space; the next pull fetches it again)."""
    if endpoint.action == _PUSH:
        return True
    return endpoint.handler is manifests.delete_manifest and ":" not in params.get("reference", ":")


class RegistryApp:
    """ASGI app for everything under /v2."""

    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            endpoint, params = match(scope["path"], scope["method"])
            if "name" in params:
                validate_hosted_name(params["name"])
            req = Request(scope, receive, params)
            principal = await self.ctx.authorizer.authorize(req.caller(), _accesses(endpoint, params))
            if self.ctx.pull_through is not None and _writes(endpoint, params):
                refused = await self.ctx.pull_through.refuse_write(params["name"])
                if refused is not None:
                    raise RegistryError(ErrorCode.DENIED, refused)
            await endpoint.handler(self.ctx, req, Actor(principal, req.client_host), tracking_send)
        except BodyInterrupted:
            log.info("client disconnected during %s %s", scope["method"], scope["path"])
        except Exception as exc:  # not BaseException: cancellation must propagate
            error = errors.translate(exc)
            if error is None:
                log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            elif errors.is_operational(exc):
                log.warning("%s %s: %s (%s)", scope["method"], scope["path"], exc, exc.__cause__)
            elif started:
                log.warning("error after the response started: %s", error)
            if not started:
                await self._send_error(scope, send, error or RegistryError(ErrorCode.UNKNOWN))

    @staticmethod
    async def _send_error(scope: Scope, send: Send, error: RegistryError) -> None:
        status, body, headers = errors.render(error)
        await send_bytes(
            send,
            status,
            b"" if scope["method"] == "HEAD" else body,
            {**headers, "Content-Length": str(len(body))},
        )
