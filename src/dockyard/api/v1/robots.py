"""Robot accounts of a workspace and their tokens (for CI and compute nodes)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp, Services
from dockyard.api.v1.inputs import IdPath, Name, Names, Text, TokenDays
from dockyard.auth.tokens import NewToken, Robot, TokenInfo

router = APIRouter(tags=["robots"])


class RobotCreate(BaseModel):
    name: Name
    description: Text = ""


class RobotUpdate(BaseModel):
    disabled: bool


class RobotPermission(BaseModel):
    repository: Text | None = Field(
        None, description="A repository of the workspace; null for the whole workspace."
    )
    role: Name | None = Field(description="reader, developer or maintainer; null removes the permission.")


class RobotTokenCreate(BaseModel):
    name: Name
    scopes: Names = Field(["pull"], description="Among pull, push, delete.")
    expires_in_days: TokenDays | None = Field(None, description="Omit for a token that does not expire.")


@router.get("/workspaces/{workspace}/robots", summary="Robot accounts (maintainers)")
async def list_robots(workspace: Name, services: Services, actor: Caller) -> list[Robot]:
    return await services.tokens.robots(actor, workspace)


@router.post("/workspaces/{workspace}/robots", status_code=201, summary="Create a robot account (owners)")
async def create_robot(
    workspace: Name, body: RobotCreate, services: Services, actor: Caller, ip: ClientIp
) -> Robot:
    return await services.tokens.create_robot(actor, workspace, body.name, body.description, ip)


@router.get("/workspaces/{workspace}/robots/{name}", summary="A robot account (maintainers)")
async def get_robot(workspace: Name, name: Name, services: Services, actor: Caller) -> Robot:
    return await services.tokens.get_robot(actor, workspace, name)


@router.patch("/workspaces/{workspace}/robots/{name}", summary="Disable or enable a robot (owners)")
async def update_robot(
    workspace: Name, name: Name, body: RobotUpdate, services: Services, actor: Caller, ip: ClientIp
) -> Robot:
    return await services.tokens.update_robot(actor, workspace, name, disabled=body.disabled, client_ip=ip)


@router.delete("/workspaces/{workspace}/robots/{name}", status_code=204, summary="Delete a robot (owners)")
async def delete_robot(workspace: Name, name: Name, services: Services, actor: Caller, ip: ClientIp) -> None:
    await services.tokens.delete_robot(actor, workspace, name, ip)


@router.put("/workspaces/{workspace}/robots/{name}/permissions", summary="Set a robot's role (owners)")
async def set_robot_permission(
    workspace: Name, name: Name, body: RobotPermission, services: Services, actor: Caller, ip: ClientIp
) -> Robot:
    return await services.tokens.set_robot_permission(actor, workspace, name, body.repository, body.role, ip)


@router.get("/workspaces/{workspace}/robots/{name}/tokens", summary="A robot's tokens (maintainers)")
async def list_robot_tokens(
    workspace: Name, name: Name, services: Services, actor: Caller
) -> list[TokenInfo]:
    return await services.tokens.robot_tokens(actor, workspace, name)


@router.post(
    "/workspaces/{workspace}/robots/{name}/tokens",
    status_code=201,
    summary="Create a robot token (owners; shown once)",
)
async def create_robot_token(
    workspace: Name, name: Name, body: RobotTokenCreate, services: Services, actor: Caller, ip: ClientIp
) -> NewToken:
    return await services.tokens.create_robot_token(
        actor, workspace, name, body.name, body.scopes, body.expires_in_days, ip
    )


@router.delete(
    "/workspaces/{workspace}/robots/{name}/tokens/{token_id}", status_code=204, summary="Revoke (owners)"
)
async def revoke_robot_token(
    workspace: Name, name: Name, token_id: IdPath, services: Services, actor: Caller, ip: ClientIp
) -> None:
    await services.tokens.revoke_robot_token(actor, workspace, name, token_id, ip)
