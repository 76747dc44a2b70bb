"""Downloads: an image version as a tar (``docker load`` / ``podman load``) or an OCI archive.

The archive is produced while it is sent (no temporary file), with an exact
``Content-Length``. Interrupted downloads resume with one ``Range`` (``bytes=N-``,
``bytes=N-M`` or ``bytes=-S``) answered ``206`` from exactly that byte; ``If-Range`` with
the ETag makes the resume safe when the tag has been pushed again meanwhile (the new
archive is then sent whole, ``200``). Several ranges in one request, or a malformed
``Range``, get the whole archive, as RFC 9110 allows; a range starting past the end gets
``416``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response, StreamingResponse

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.catalog import Services as CatalogServicesDep
from dockyard.api.v1.catalog import registry_host
from dockyard.api.v1.inputs import Name, Text
from dockyard.http.ranges import span_of
from dockyard.transfer.exports.service import Exports

router = APIRouter(tags=["transfer"])

TAR = "application/x-tar"


class ArchiveFormat(StrEnum):
    docker = "docker"
    oci = "oci"


def exports_service(request: Request) -> Exports:
    found: Exports = request.app.state.exports
    return found


ExportsDep = Annotated[Exports, Depends(exports_service)]

_DESCRIPTION = """
Only **internal** versions in status **available**, created by a workspace you are a member
of (or any, for admins), can be downloaded; images shared with you from another workspace
(public ones, or granted on request) cannot. Every refusal is a problem document saying why:
401 (not signed in), 403 (not your workspace, or a token without the pull scope), 404 (no
such version, or one you cannot see), 409 (external, pending or failed version; a platform
the image does not have, with the list of those it has), 422 (malformed parameters).

`format=docker` (default) is the `docker save` layout that `docker load` and `podman load`
accept, holding one image: for a multi-platform index the `platform` chosen (default
linux/amd64). `format=oci` is an OCI image layout (`skopeo copy oci-archive:FILE ...`,
`podman load`); without `platform` it holds a multi-platform index whole.
"""


_PATH = "/images/{name:path}/versions/{version}/archive"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {TAR: {}}, "description": "The whole archive."},
    206: {"content": {TAR: {}}, "description": "The range asked for (resuming a download)."},
    304: {"description": "If-None-Match names the current archive."},
    416: {"description": "The range starts past the end of the archive."},
}


@router.head(
    _PATH,
    summary="The archive's headers: size, ETag, file name (no body)",
    response_class=Response,
    responses=_RESPONSES,
    operation_id="archive_headers",
)
@router.get(
    _PATH,
    summary="Download a version as a tar (docker load, podman load) or an OCI archive",
    description=_DESCRIPTION,
    response_class=StreamingResponse,
    responses=_RESPONSES,
    operation_id="download_archive",
)
async def download(
    name: Text,
    version: Name,
    request: Request,
    catalog: CatalogServicesDep,
    exports: ExportsDep,
    actor: Caller,
    ip: ClientIp,
    format: Annotated[ArchiveFormat, Query(description="docker (default) or oci.")] = ArchiveFormat.docker,
    platform: Annotated[
        Name | None,
        Query(description="os/arch[/variant] to take from a multi-platform image, e.g. linux/arm64."),
    ] = None,
) -> Response:
    archive = await exports.prepare(
        actor,
        name,
        version,
        fmt=format.value,
        platform=platform,
        registry_host=registry_host(request, catalog),
    )
    size = archive.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": archive.etag,
        "Content-Disposition": _attachment(archive.filename),
        "Cache-Control": "private, no-cache",
        "Dockyard-Image-Digest": archive.digest,
        "Dockyard-Archive-Root": archive.root,
    }
    if archive.platform:
        headers["Dockyard-Platform"] = archive.platform
    if _matches(request.headers.get("if-none-match"), archive.etag):
        return Response(status_code=304, headers=headers)
    span = span_of(request.headers.get("range"), request.headers.get("if-range"), archive.etag, size)
    if span is None:
        start, end, status = 0, size, 200
    elif span.satisfiable:
        start, end, status = span.start, span.end, 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    else:
        raise HTTPException(
            416,
            f"the range asked for starts past the end of the {size}-byte archive",
            headers={"Content-Range": f"bytes */{size}", **headers},
        )
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=TAR)
    await exports.record(actor, archive, start, ip)
    return StreamingResponse(_body(archive.stream.stream(start), end - start), status, headers, TAR)


async def _body(chunks: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
    """The first ``length`` bytes of ``chunks`` (a range that ends before the archive does)."""
    remaining = length
    try:
        async for chunk in chunks:
            if len(chunk) >= remaining:
                if remaining:
                    yield chunk[:remaining]
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        close = getattr(chunks, "aclose", None)  # the archive's async generator: release its file
        if close is not None:
            await close()


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in header.split(",")]


def _attachment(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
