"""Workspaces, members and teams."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp, Services
from dockyard.api.v1.inputs import Name, Text
from dockyard.api.v1.quotas import Service as QuotaService
from dockyard.auth.guard import Workspace
from dockyard.tenancy.members import Member, Team

router = APIRouter(tags=["workspaces"])


@dataclass(frozen=True)
class WorkspaceView:
    name: str
    kind: str
    description: str
    default_visibility: str
    created_at: float
    my_role: str | None
    # Shown to members, by GET of one workspace (see /workspaces/{name}/quota): the bytes it
    # stores (each blob once) and its quota in force (None: unlimited, or not shown).
    used_bytes: int | None = None
    limit_bytes: int | None = None


def _view(ws: Workspace, role: str | None) -> WorkspaceView:
    return WorkspaceView(ws.name, ws.kind, ws.description, ws.default_visibility, ws.created_at, role)


class WorkspaceCreate(BaseModel):
    name: Name
    description: Text = ""
    default_visibility: Name = Field("private", description="'private' or 'public', for new repositories.")


class WorkspaceUpdate(BaseModel):
    description: Text | None = None
    default_visibility: Name | None = None


class RoleBody(BaseModel):
    role: Name = Field(description="reader, developer, maintainer or owner.")


class TeamCreate(BaseModel):
    name: Name
    description: Text = ""


class TeamRole(BaseModel):
    role: Name | None = Field(description="The team's role on the whole workspace; null removes it.")


@router.get("/workspaces", summary="Workspaces (mine=true: those you belong to)")
async def list_workspaces(services: Services, actor: Caller, mine: bool = False) -> list[WorkspaceView]:
    return [_view(ws, role) for ws, role in await services.workspaces.visible(actor, mine)]


@router.post("/workspaces", status_code=201, summary="Create an organisation workspace; you become its owner")
async def create_workspace(
    body: WorkspaceCreate, services: Services, actor: Caller, ip: ClientIp
) -> WorkspaceView:
    ws = await services.workspaces.create(
        actor,
        body.name,
        description=body.description,
        default_visibility=body.default_visibility,
        client_ip=ip,
    )
    return _view(ws, "owner")


@router.get("/workspaces/{name}", summary="A workspace (for members: with its storage and quota)")
async def get_workspace(name: Name, services: Services, quotas: QuotaService, actor: Caller) -> WorkspaceView:
    ws, role = await services.workspaces.get(actor, name)
    if role is None:
        return _view(ws, role)
    quota = await quotas.show(actor, name)
    return replace(_view(ws, role), used_bytes=quota.used_bytes, limit_bytes=quota.limit_bytes)


@router.patch("/workspaces/{name}", summary="Change a workspace (owners)")
async def update_workspace(
    name: Name, body: WorkspaceUpdate, services: Services, actor: Caller, ip: ClientIp
) -> WorkspaceView:
    await services.workspaces.update(
        actor, name, description=body.description, default_visibility=body.default_visibility, client_ip=ip
    )
    ws, role = await services.workspaces.get(actor, name)
    return _view(ws, role)


@router.delete(
    "/workspaces/{name}",
    status_code=204,
    summary="Delete a workspace (owners and admins); refused with what it holds unless forced",
    responses={409: {"description": "It still holds content: the problem's ``holds`` lists it."}},
)
async def delete_workspace(
    name: Name,
    services: Services,
    actor: Caller,
    ip: ClientIp,
    force: Annotated[
        bool, Query(description="Delete everything it holds too (images, repositories, build definitions).")
    ] = False,
) -> None:
    """Refused (409, problem type ``still-holds`` with a ``holds`` list) while the workspace
    holds images, repositories or build definitions; ``force=true`` deletes them with it (the
    registry's bytes once the garbage collector runs). Audited with what went."""
    await services.workspaces.delete(actor, name, ip, force=force)


@router.get("/workspaces/{name}/members", summary="Members (members)")
async def list_members(name: Name, services: Services, actor: Caller) -> list[Member]:
    return await services.workspaces.members(actor, name)


@router.put("/workspaces/{name}/members/{username}", summary="Add a member or change their role (owners)")
async def set_member(
    name: Name, username: Name, body: RoleBody, services: Services, actor: Caller, ip: ClientIp
) -> Member:
    return await services.workspaces.set_member(actor, name, username, body.role, ip)


@router.delete(
    "/workspaces/{name}/members/{username}", status_code=204, summary="Remove a member (owners, or leave)"
)
async def remove_member(name: Name, username: Name, services: Services, actor: Caller, ip: ClientIp) -> None:
    await services.workspaces.remove_member(actor, name, username, ip)


@router.get("/workspaces/{name}/teams", summary="Teams (members)")
async def list_teams(name: Name, services: Services, actor: Caller) -> list[Team]:
    return await services.workspaces.teams(actor, name)


@router.post("/workspaces/{name}/teams", status_code=201, summary="Create a team (owners)")
async def create_team(name: Name, body: TeamCreate, services: Services, actor: Caller, ip: ClientIp) -> Team:
    return await services.workspaces.create_team(actor, name, body.name, body.description, ip)


@router.delete("/workspaces/{name}/teams/{team}", status_code=204, summary="Delete a team (owners)")
async def delete_team(name: Name, team: Name, services: Services, actor: Caller, ip: ClientIp) -> None:
    await services.workspaces.delete_team(actor, name, team, ip)


@router.put("/workspaces/{name}/teams/{team}/members/{username}", summary="Add a user to a team (owners)")
async def add_team_member(
    name: Name, team: Name, username: Name, services: Services, actor: Caller, ip: ClientIp
) -> Team:
    return await services.workspaces.set_team_member(actor, name, team, username, True, ip)


@router.delete(
    "/workspaces/{name}/teams/{team}/members/{username}", summary="Remove a user from a team (owners)"
)
async def remove_team_member(
    name: Name, team: Name, username: Name, services: Services, actor: Caller, ip: ClientIp
) -> Team:
    return await services.workspaces.set_team_member(actor, name, team, username, False, ip)


@router.put("/workspaces/{name}/teams/{team}/role", summary="Set the team's workspace-wide role (owners)")
async def set_team_role(
    name: Name, team: Name, body: TeamRole, services: Services, actor: Caller, ip: ClientIp
) -> Team:
    return await services.workspaces.set_team_workspace_role(actor, name, team, body.role, ip)
