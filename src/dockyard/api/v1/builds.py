"""Builds: definitions (what to build), runs (each build), their logs and history::

    POST   /builds                          create a definition (developers)      -> 201
    GET    /workspaces/{workspace}/builds   the workspace's definitions
    GET    /builds/{name}                   one definition, with its status (built, not_built, modified)
                                            and what the caller may not do to it, and why (refused)
    PATCH  /builds/{name}                   SAVE changes (developers)
    DELETE /builds/{name}                   (maintainers)
    PUT    /builds/{name}/context           the context files: a tar (plain or gzip) as the body
    GET    /builds/{name}/files             the context's files (path, size, mode)
    PUT    /builds/{name}/files/{path}      add or replace one file: its bytes as the body;
                                            ?mode=0755 or ?executable=true (developers)
    DELETE /builds/{name}/files/{path}      remove a file, or a folder and its files (developers)
    GET    /builds/{name}/events            the definition's history
    POST   /builds/{name}/runs              start a build (owners)                -> 202, the run
    GET    /builds/{name}/runs              the build history, newest first
    GET    /build-runs/{id}                 one build
    POST   /build-runs/{id}/cancel          (owners)
    GET    /build-runs/{id}/log             the log; ?offset=N; ?follow=true streams it until the
                                            build ends (chunked text, or server-sent events with
                                            Accept: text/event-stream)

Names are whole names, like ``genomics/samtools``. In ``/builds/{name}/files/{path}`` the
name ends at the first ``/files/`` after which a definition the caller can see is named.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import ByteOffset, Document, IdPath, Name, Text
from dockyard.auth.policy import Subject
from dockyard.builds.definitions import DefinitionChanges, DefinitionInput
from dockyard.builds.files import ContextFile, check_mode
from dockyard.builds.service import BuildService
from dockyard.builds.spec import GitSource
from dockyard.builds.targets import MAX_TARGETS, PushTarget
from dockyard.builds.views import BuildEvent, DefinitionView, RunView

router = APIRouter(tags=["builds"])
TAR_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
    }
}

FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def build_service(request: Request) -> BuildService:
    found: BuildService = request.app.state.builds
    return found


Services = Annotated[BuildService, Depends(build_service)]


class Git(BaseModel):
    url: Text = Field(description="https://..., ssh://..., git://... (file:// if the server allows it)")
    ref: Name = Field(description="A branch, tag or commit.")
    directory: Text = Field("", description="The folder that is the build context.")
    dockerfile: Text = Field("Dockerfile", description="The Dockerfile's path inside that folder.")

    def source(self) -> GitSource:
        return GitSource(self.url, self.ref, self.directory, self.dockerfile)


class Target(BaseModel):
    profile: Name = Field(
        description="The registry host of a registry profile of the workspace "
        "(platform-wide ones serve pulls only)."
    )
    repository: Text = Field(description="The repository there, like org/tool.")
    tag: Name | None = Field(None, description="The tag to push; default: the build's version.")

    def target(self) -> PushTarget:
        return PushTarget(self.profile, self.repository, self.tag)


class DefinitionFields(BaseModel):
    description: Text | None = None
    context: Literal["local", "git"] | None = Field(None, description="local: a Dockerfile and files; git.")
    dockerfile: Document | None = Field(None, description="The Dockerfile (local context).")
    git: Git | None = None
    build_args: dict[Name, Text] | None = None
    target: Name | None = Field(None, description="Target stage; empty clears it.")
    platform: Name | None = Field(None, description="os/arch, default linux/amd64.")
    version: Name | None = Field(None, description="The tag builds push by default ('latest').")
    external_destination: Text | None = Field(
        None,
        description="Also push to this repository of another registry (its stored credentials); '' clears.",
    )
    push_targets: list[Target] | None = Field(
        None,
        max_length=MAX_TARGETS,
        description=f"After a successful build, also push to each of these (at most {MAX_TARGETS}) through "
        "its registry profile; a failed push does not fail the build. [] removes them all.",
    )
    network: Literal["none", "egress"] | None = Field(
        None,
        description="What RUN steps reach: 'none' (the default: only their own loopback) or 'egress' "
        "(other hosts, through a network of their own that never reaches this server's loopback).",
    )


class NewDefinition(DefinitionFields):
    workspace: Name
    name: Text = Field(description="The image name; the registry repository is workspace/name.")


class Changes(DefinitionFields):
    name: Text | None = Field(None, description="A new name (renames the repository builds push to).")


class StartBuild(BaseModel):
    version: Name | None = Field(None, description="The tag to push; default: the definition's version.")


class RunOut(BaseModel):
    id: int
    image: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    version: str
    started_by: str
    queued_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    attempt: int
    content_hash: str
    source: dict[str, Any]
    reason: str | None
    digest: str | None
    pushed: list[dict[str, str]]
    git_commit: str | None
    builder: str | None
    dockerfile: str | None
    log_bytes: int
    cancel_requested: bool
    cancelled_by: str | None
    push_results: list[dict[str, Any]] = Field(
        description="Each push target's outcome: reference, profile, ok, digest; when it failed, reason "
        "(unauthorized, forbidden, not_found, rate_limited, unreachable, tls, upstream_error, refused), "
        "detail and message."
    )


class DefinitionOut(BaseModel):
    id: int
    name: str
    workspace: str
    description: str
    status: str = Field(description="built, not_built or modified (against the last successful build).")
    context: str
    dockerfile: str | None
    context_digest: str | None
    context_size: int | None
    git: Git | None
    build_args: dict[str, str]
    target: str | None
    platform: str
    network: str = Field(description="What RUN steps reach: none or egress.")
    version: str
    external_destination: str | None
    push_targets: list[Target]
    content_hash: str
    revision: int
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str
    last_build: RunOut | None
    last_success: RunOut | None
    my_role: str = Field(description="Your role in the workspace (admins: owner).")
    refused: dict[str, str] = Field(
        description="What you may not do to this definition (edit, delete, build), each with the "
        "reason the action itself would give; an action not named is allowed."
    )


class FileOut(BaseModel):
    path: str
    size: int
    mode: str = Field(description="Permissions in octal, like 0644 or 0755.")
    kind: str = Field(description="file, symlink or link (a hard link).")


class EventOut(BaseModel):
    id: int
    at: float
    actor: str
    kind: str
    detail: dict[str, Any]


def run_out(run: RunView) -> RunOut:
    fields = {k: v for k, v in run.__dict__.items() if k != "created_at"}
    return RunOut(queued_at=run.created_at, duration=run.duration, **fields)


def definition_out(view: DefinitionView) -> DefinitionOut:
    recipe = view.recipe
    git = recipe.git
    return DefinitionOut(
        id=view.id,
        name=view.name,
        workspace=view.workspace,
        description=view.description,
        status=view.status,
        context=recipe.context,
        dockerfile=recipe.dockerfile,
        context_digest=recipe.context_digest,
        context_size=view.context_size,
        git=None
        if git is None
        else Git(url=git.url, ref=git.ref, directory=git.directory, dockerfile=git.dockerfile),
        build_args=recipe.build_args,
        target=recipe.target,
        platform=recipe.platform,
        network=recipe.network,
        version=view.version,
        external_destination=view.external_destination,
        push_targets=[Target(**t.__dict__) for t in view.push_targets],
        content_hash=view.content_hash,
        revision=view.revision,
        created_at=view.created_at,
        created_by=view.created_by,
        updated_at=view.updated_at,
        updated_by=view.updated_by,
        last_build=None if view.last_build is None else run_out(view.last_build),
        last_success=None if view.last_success is None else run_out(view.last_success),
        my_role=view.my_role,
        refused=view.refused,
    )


def event_out(event: BuildEvent) -> EventOut:
    return EventOut(**event.__dict__)


def file_out(found: ContextFile) -> FileOut:
    return FileOut(path=found.path, size=found.size, mode=f"{found.mode:04o}", kind=found.kind)


@router.post("/builds", status_code=201, summary="Create a build definition (developers)")
async def create(body: NewDefinition, services: Services, actor: Caller) -> DefinitionOut:
    data = DefinitionInput(
        context=body.context or ("git" if body.git is not None else "local"),
        description=body.description or "",
        dockerfile=body.dockerfile,
        git=None if body.git is None else body.git.source(),
        build_args=body.build_args or {},
        target=body.target,
        platform=body.platform or "linux/amd64",
        version=body.version or "latest",
        external_destination=body.external_destination,
        network=body.network or "none",
        push_targets=tuple(t.target() for t in body.push_targets or []),
    )
    return definition_out(await services.definitions.create(actor, body.workspace, body.name, data))


@router.get("/workspaces/{workspace}/builds", summary="The workspace's build definitions (members)")
async def in_workspace(workspace: Name, services: Services, actor: Caller) -> list[DefinitionOut]:
    return [definition_out(view) for view in await services.definitions.in_workspace(actor, workspace)]


@router.get("/build-runs/{run_id}", summary="One build")
async def get_run(run_id: IdPath, services: Services, actor: Caller) -> RunOut:
    return run_out(await services.run(actor, run_id))


@router.post("/build-runs/{run_id}/cancel", summary="Cancel a queued or running build (owners)")
async def cancel_run(run_id: IdPath, services: Services, actor: Caller) -> RunOut:
    return run_out(await services.cancel(actor, run_id))


@router.get(
    "/build-runs/{run_id}/log",
    summary="The build log (?follow=true streams it live)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}, "text/event-stream": {}}}},
)
async def get_log(
    run_id: IdPath,
    request: Request,
    services: Services,
    actor: Caller,
    offset: ByteOffset = 0,
    follow: bool = False,
) -> Response:
    if not follow:
        return Response(await services.log(actor, run_id, offset), media_type="text/plain; charset=utf-8")
    await services.run(actor, run_id)  # visibility, before the stream starts
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(_events(services, actor, run_id, offset), media_type="text/event-stream")
    return StreamingResponse(services.follow(actor, run_id, offset), media_type="text/plain; charset=utf-8")


async def _events(
    services: BuildService, actor: Subject, run_id: IdPath, offset: int
) -> AsyncIterator[bytes]:
    """Server-sent events: ``log`` (one per line, ``id`` = the offset after it) and ``end``."""
    pending = b""
    async for chunk in services.follow(actor, run_id, offset):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            offset += len(line) + 1
            yield b"event: log\nid: %d\ndata: %s\n\n" % (offset, line)
    run = await services.run(actor, run_id)
    yield f"event: end\ndata: {json.dumps({'status': run.status, 'digest': run.digest})}\n\n".encode()


@router.post("/builds/{name:path}/runs", status_code=202, summary="Start a build (workspace owners)")
async def start(name: Text, services: Services, actor: Caller, body: StartBuild | None = None) -> RunOut:
    return run_out(await services.start(actor, name, None if body is None else body.version))


@router.get("/builds/{name:path}/runs", summary="The build history, newest first")
async def history(
    name: Text, services: Services, actor: Caller, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RunOut]:
    return [run_out(run) for run in await services.history(actor, name, limit)]


@router.get("/builds/{name:path}/events", summary="The definition's history: created, modified, built")
async def events(name: Text, services: Services, actor: Caller) -> list[EventOut]:
    return [event_out(event) for event in await services.definitions.history(actor, name)]


@router.get("/builds/{name:path}/files", summary="The context's files (local context)")
async def list_files(name: Text, services: Services, actor: Caller) -> list[FileOut]:
    return [file_out(found) for found in await services.files.list(actor, name)]


@router.put(
    "/builds/{name:path}/files/{file_path:path}",
    summary="Add or replace one context file (developers)",
    openapi_extra=FILE_BODY,
)
async def put_file(
    name: Text,
    file_path: Text,
    request: Request,
    services: Services,
    actor: Caller,
    mode: Annotated[Name | None, Query(description="Octal permissions, like 0755.")] = None,
    executable: Annotated[bool, Query(description="0755 instead of 0644 (without mode).")] = False,
) -> DefinitionOut:
    permissions = check_mode(mode, executable)
    name, file_path = await services.files.resolve(actor, name, file_path)
    return definition_out(await services.files.put(actor, name, file_path, request.stream(), permissions))


@router.delete(
    "/builds/{name:path}/files/{file_path:path}", summary="Remove a context file or folder (developers)"
)
async def remove_file(name: Text, file_path: Text, services: Services, actor: Caller) -> DefinitionOut:
    name, file_path = await services.files.resolve(actor, name, file_path)
    return definition_out(await services.files.remove(actor, name, file_path))


@router.put("/builds/{name:path}/context", summary="Upload the context files (a tar)", openapi_extra=TAR_BODY)
async def upload_context(name: Text, request: Request, services: Services, actor: Caller) -> DefinitionOut:
    return definition_out(await services.definitions.upload_context(actor, name, request.stream()))


@router.patch("/builds/{name:path}", summary="Change a definition (developers)")
async def update(name: Text, body: Changes, services: Services, actor: Caller) -> DefinitionOut:
    changes = DefinitionChanges(
        name=body.name,
        description=body.description,
        context=body.context,
        dockerfile=body.dockerfile,
        git=None if body.git is None else body.git.source(),
        build_args=body.build_args,
        target=body.target,
        platform=body.platform,
        version=body.version,
        external_destination=body.external_destination,
        network=body.network,
        push_targets=None if body.push_targets is None else tuple(t.target() for t in body.push_targets),
    )
    return definition_out(await services.definitions.update(actor, name, changes))


@router.delete(
    "/builds/{name:path}", status_code=204, summary="Delete a definition and its builds (maintainers)"
)
async def delete(name: Text, services: Services, actor: Caller, ip: ClientIp) -> None:
    await services.definitions.delete(actor, name, ip)


@router.get("/builds/{name:path}", summary="One definition, with its status")
async def get(name: Text, services: Services, actor: Caller) -> DefinitionOut:
    return definition_out(await services.definition(actor, name))
