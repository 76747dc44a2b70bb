"""Upload image archives (``docker save``, OCI layouts; plain, gzip or zstd) and create image
versions from them.

Large archives go in chunks, resumable after a dropped connection or a server restart::

    POST   /archives                       {"workspace", "size"}  -> 201, the session (Location)
    PATCH  /archives/{id}                  a chunk; Content-Range: bytes START-END/TOTAL
    GET    /archives/{id}                  state, offset (resume from there), import progress
    PUT    /archives/{id}                  (last chunk) complete: import (?wait=false: in the background)
    GET    /archives/{id}/images           what the archive holds: tags, platforms
    POST   /archives/{id}/create-version   {"name", "version", "type", ...} -> the catalog version
    DELETE /archives/{id}

Small archives in one request: ``POST /archives/import?workspace=W&name=N&version=V`` with
the archive as the body. Refusals are problem documents whose ``detail`` says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from dockyard.api.deps import Caller
from dockyard.api.v1.catalog import ACCESS, VISIBILITY
from dockyard.api.v1.inputs import Bytes, Index, Name, Names, Text
from dockyard.archive.errors import ArchiveError, DigestMismatch, UnsafeArchive
from dockyard.auth.guard import require_user
from dockyard.auth.policy import Subject
from dockyard.catalog.service import VersionSettings
from dockyard.catalog.views import VersionView
from dockyard.http.problems import PROBLEMS, problem
from dockyard.oci.errors import InvalidValue
from dockyard.oci.ranges import parse_content_range, parse_length
from dockyard.registry.uploads import BodyInterrupted
from dockyard.transfer.imports.results import ArchiveImageInfo
from dockyard.transfer.imports.service import ArchiveUploads
from dockyard.transfer.imports.sessions import ArchiveStatus, OffsetMismatch, TooLarge
from dockyard.transfer.imports.versions import ArchiveVersions, VersionRequest

router = APIRouter(tags=["archives"])
BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@dataclass
class ArchiveServices:
    uploads: ArchiveUploads
    versions: ArchiveVersions


def archive_services(request: Request) -> ArchiveServices:
    found: ArchiveServices = request.app.state.archives
    return found


Services = Annotated[ArchiveServices, Depends(archive_services)]


class StartUpload(BaseModel):
    workspace: Name = Field(description="The workspace the images will be created in (developers).")
    size: Bytes | None = Field(None, description="The archive's size in bytes, when known.")
    layer_compression: Name = Field(
        "gzip", description="How uncompressed (docker save) layers are stored: 'gzip' or 'zstd'."
    )


class CreateVersion(BaseModel):
    image: Index | Name | None = Field(
        None, description="Which image: its index or one of its tags (optional with one image)."
    )
    workspace: Name | None = Field(None, description="Default: the upload's workspace.")
    name: Text | None = Field(None, description="Image name in the workspace; default: from the image's tag.")
    version: Name | None = Field(None, description="Default: the image's tag.")
    type: Name | None = Field(None, description="'tool' (default) or 'bench'.")
    visibility: Name | None = Field(None, description=VISIBILITY)
    access: Name | None = Field(None, description=ACCESS, deprecated=True)
    regions: Names | None = None
    cluster_compatibility: Names | None = Field(None, description="Bench images: clusters they run on.")
    replace: bool = Field(False, description="Replace the version if it exists.")

    def request(self) -> VersionRequest:
        settings = VersionSettings(
            self.type, self.access, self.regions, self.cluster_compatibility, visibility=self.visibility
        )
        return VersionRequest(self.image, self.workspace, self.name, self.version, settings, self.replace)


@dataclass(frozen=True)
class OneShotResult:
    archive: ArchiveStatus
    version: VersionView | None  # None: no name or version given (create it later)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that goes away midway raises BodyInterrupted."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise BodyInterrupted
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


FORWARDED = "x-dockyard-forwarded"
_HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", FORWARDED}
_ANSWER_HEADERS = ("content-type", "location", "range", "upload-offset", "retry-after", "www-authenticate")


async def _to_holder(
    request: Request, uploads: ArchiveUploads, archive_id: str, actor: Subject
) -> Response | None:
    """A chunk for an upload whose import lives in a sibling server process (several workers
    share the port, and each connection lands in any of them) is passed on to that process,
    body and all, and its answer returned: the import keeps its state, nothing is sent twice.
    None when this process should take the chunk itself."""
    require_user(actor)  # nobody streams bodies to a sibling before signing in
    if request.headers.get(FORWARDED):
        return None  # already passed on once: take it here (the import moves here if need be)
    path = await uploads.holder_socket(archive_id)
    if path is None:
        return None
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers[FORWARDED] = "1"
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    transport = httpx.AsyncHTTPTransport(uds=str(path))
    # No read or write limit: the sibling answers when it has worked on the whole chunk.
    timeout = httpx.Timeout(None, connect=5.0)
    body = _body(request)
    async with httpx.AsyncClient(transport=transport, base_url="http://sibling", timeout=timeout) as client:
        try:
            async with client.stream(request.method, target, headers=headers, content=body) as answer:
                content = await answer.aread()
        except httpx.ConnectError:
            return None  # the sibling is gone: this process takes over from the checkpoint
        except httpx.TransportError:
            return problem(
                503,
                "holder-gone",
                "The server process holding this upload went away",
                "GET the upload for its offset and send from there",
            )
    kept = {k: v for k, v in answer.headers.items() if k.lower() in _ANSWER_HEADERS}
    return Response(content, answer.status_code, headers=kept)


def _content_range(request: Request) -> tuple[int | None, int | None, int | None]:
    """(start, length, total) from ``Content-Range: bytes START-END/TOTAL`` (or ``START-END``)."""
    header = request.headers.get("content-range")
    length = request.headers.get("content-length")
    size = None if length is None else parse_length(length)
    if not header:
        return None, size, None
    found = parse_content_range(header)
    if found is None:
        raise _BadRange(f"Content-Range {header[:100]!r} is not 'bytes START-END/TOTAL'")
    if size is not None and size != found.length:
        raise _BadRange(
            f"Content-Range {header[:100]!r} names {found.length} bytes but Content-Length is {size}"
        )
    return found.start, found.length, found.total


class _BadRange(ValueError):
    pass


def _progress_headers(status: ArchiveStatus) -> dict[str, str]:
    headers = {"Upload-Offset": str(status.offset), "Location": f"/api/v1/archives/{status.id}"}
    if status.offset:
        headers["Range"] = f"bytes=0-{status.offset - 1}"
    return headers


def _json(status_code: int, value: Any, headers: dict[str, str]) -> Response:
    return JSONResponse(jsonable_encoder(value), status_code=status_code, headers=headers)


@router.get("/archives", summary="Your archive uploads, newest first")
async def list_uploads(services: Services, actor: Caller) -> list[ArchiveStatus]:
    return await services.uploads.list(actor)


@router.post(
    "/archives",
    status_code=201,
    response_model=ArchiveStatus,
    summary="Start a chunked archive upload (developers of the workspace)",
)
async def start_upload(body: StartUpload, services: Services, actor: Caller) -> Response:
    status = await services.uploads.start(actor, body.workspace, body.size, body.layer_compression)
    return _json(201, status, _progress_headers(status))


@router.post(
    "/archives/import",
    status_code=201,
    summary="Upload a whole archive in one request and import it; with a name or version, create it too",
    openapi_extra=BINARY_BODY,
)
async def one_shot(
    request: Request,
    services: Services,
    actor: Caller,
    workspace: Name,
    layer_compression: Annotated[Name, Query(description="'gzip' or 'zstd'.")] = "gzip",
    image: Annotated[Name | None, Query(description="Which image: index or tag (several images).")] = None,
    name: Text | None = None,
    version: Name | None = None,
    type: Annotated[Name | None, Query(description="'tool' or 'bench'.")] = None,
    visibility: Annotated[Name | None, Query(description=VISIBILITY)] = None,
    access: Annotated[Name | None, Query(description=ACCESS, deprecated=True)] = None,
    regions: Annotated[Names | None, Query()] = None,
    cluster_compatibility: Annotated[Names | None, Query()] = None,
    replace: bool = False,
) -> OneShotResult:
    _, length, _ = _content_range(request)
    uploads = services.uploads
    started = await uploads.start(actor, workspace, length, layer_compression)
    try:
        status = await uploads.import_body(actor, started.id, _body(request))
    except BaseException:
        await uploads.remove_failed(started.id)
        raise
    created = None
    if name or version or image is not None:
        chosen: int | str | None = image
        if image is not None and image.isascii() and image.isdigit():  # not '²'
            chosen = int(image)
        settings = VersionSettings(type, access, regions, cluster_compatibility, visibility=visibility)
        request_ = VersionRequest(chosen, None, name, version, settings, replace)
        created = await services.versions.create(actor, started.id, request_)
        status = await uploads.status(actor, started.id)
    return OneShotResult(status, created)


@router.get("/archives/{archive_id}", summary="State, offset and import progress of an upload")
async def get_upload(archive_id: Name, services: Services, actor: Caller) -> Response:
    status = await services.uploads.status(actor, archive_id)
    return _json(200, status, _progress_headers(status))


@router.patch(
    "/archives/{archive_id}",
    status_code=202,
    response_model=ArchiveStatus,
    summary="Append a chunk (Content-Range: bytes START-END/TOTAL; START must be the offset)",
    openapi_extra=BINARY_BODY,
)
async def append_chunk(archive_id: Name, request: Request, services: Services, actor: Caller) -> Response:
    forwarded = await _to_holder(request, services.uploads, archive_id, actor)
    if forwarded is not None:
        return forwarded
    start, length, total = _content_range(request)
    status = await services.uploads.append(actor, archive_id, _body(request), start, length, total)
    return _json(202, status, _progress_headers(status))


@router.put(
    "/archives/{archive_id}",
    response_model=ArchiveStatus,
    summary="Complete the upload (with an optional last chunk) and import the archive",
    openapi_extra=BINARY_BODY,
)
async def complete_upload(
    archive_id: Name,
    request: Request,
    services: Services,
    actor: Caller,
    wait: bool = Query(True, description="Answer when the import has ended; false: 202 at once, poll GET."),
) -> Response:
    forwarded = await _to_holder(request, services.uploads, archive_id, actor)
    if forwarded is not None:
        return forwarded
    start, length, _ = _content_range(request)
    status = await services.uploads.complete(actor, archive_id, _body(request), start, length, wait)
    return _json(200 if wait else 202, status, _progress_headers(status))


@router.get("/archives/{archive_id}/images", summary="The images an imported archive holds")
async def archive_images(archive_id: Name, services: Services, actor: Caller) -> list[ArchiveImageInfo]:
    return await services.uploads.images(actor, archive_id)


@router.post(
    "/archives/{archive_id}/create-version",
    status_code=201,
    summary="Create an image version from an image of the archive (pushes it; needs push there)",
)
async def create_version(
    archive_id: Name, body: CreateVersion, services: Services, actor: Caller
) -> VersionView:
    return await services.versions.create(actor, archive_id, body.request())


@router.delete("/archives/{archive_id}", status_code=204, summary="Remove an upload and what it staged")
async def delete_upload(archive_id: Name, services: Services, actor: Caller) -> None:
    await services.uploads.delete(actor, archive_id)


# --- problems -----------------------------------------------------------------------------


async def _archive_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArchiveError)
    if isinstance(exc, UnsafeArchive):
        return problem(422, "unsafe-archive", "The archive was refused as unsafe", str(exc))
    if isinstance(exc, DigestMismatch):
        return problem(422, "digest-mismatch", "The archive's content does not match its manifest", str(exc))
    return problem(422, "invalid-archive", "The archive is not a valid image archive", str(exc))


async def _too_large(request: Request, exc: Exception) -> Response:
    return problem(413, "too-large", "Too large", str(exc))


async def _offset_mismatch(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OffsetMismatch)
    headers = {"Upload-Offset": str(exc.offset)}
    if exc.offset:
        headers["Range"] = f"bytes=0-{exc.offset - 1}"
    detail = f"{exc}; resume from offset {exc.offset}"
    return problem(
        416, "offset-mismatch", "The chunk does not continue the upload", detail, headers, offset=exc.offset
    )


async def _bad_range(request: Request, exc: Exception) -> Response:
    return problem(400, "bad-range", "Bad Content-Range", str(exc))


async def _interrupted(request: Request, exc: Exception) -> Response:
    return problem(
        400, "interrupted", "The body ended early", "the request body ended before it was complete"
    )


async def _refused_value(request: Request, exc: Exception) -> Response:
    """A value the OCI grammar refused (e.g. a manifest of the archive), by its row of the table.
    The registry's own refusals are domain errors, which that table answers everywhere."""
    assert isinstance(exc, InvalidValue)
    status, slug, title = PROBLEMS.get(type(exc), (500, "unknown", "unknown error"))
    return problem(status, slug, title, exc.message)


def install_problems(app: FastAPI) -> None:
    app.add_exception_handler(ArchiveError, _archive_error)
    app.add_exception_handler(TooLarge, _too_large)
    app.add_exception_handler(OffsetMismatch, _offset_mismatch)
    app.add_exception_handler(_BadRange, _bad_range)
    app.add_exception_handler(BodyInterrupted, _interrupted)
    app.add_exception_handler(InvalidValue, _refused_value)
