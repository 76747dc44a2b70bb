"""The /api/v1 app's exception handlers: errors answered as problem documents.

The table and the documents are :mod:`dockyard.http.problems`; what is the app's own is
installing the handlers, and answering a request FastAPI refused before the endpoint ran
(which needs the app's authentication, :mod:`dockyard.api.deps`).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dockyard.api.deps import WEB_HEADER, anonymous_may_call, require_signed_in
from dockyard.errors import DomainError
from dockyard.http.problems import (
    domain_problem,
    http_problem,
    problem,
    storage_problem,
    unavailable_problem,
)
from dockyard.storage.base import StorageUnavailable
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.api")


def _challenge(request: Request) -> bool:
    """Scripts are told how to authenticate on a 401; the web UI's own calls are not, or the
    browser would open its password dialog over the page's sign-in form."""
    return not request.headers.get(WEB_HEADER)


async def _access_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_problem(exc, challenge=_challenge(request))


async def _insufficient_storage(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InsufficientStorage)
    log.warning("%s %s: %s (%s)", request.method, request.url.path, exc, exc.__cause__)
    return storage_problem(exc)


async def _storage_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageUnavailable)
    log.warning("%s %s: %s (%s)", request.method, request.url.path, exc, exc.__cause__)
    return unavailable_problem()


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # FastAPI checks parameters and body before the endpoint runs, and parses a JSON body
    # even before the caller is authenticated. A caller who must sign in learns that first
    # (401 and the challenge), as with a well-formed body; a signed-in one gets the 422.
    if not anonymous_may_call(request):
        try:
            await require_signed_in(request)
        except DomainError as denied:
            return domain_problem(denied, challenge=_challenge(request))
    errors = [
        {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return problem(422, "invalid", "Invalid request", detail, errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_problem(exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _access_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(InsufficientStorage, _insufficient_storage)
    app.add_exception_handler(StorageUnavailable, _storage_unavailable)
