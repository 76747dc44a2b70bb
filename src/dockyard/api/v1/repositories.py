"""Repositories: what you may see, visibility, and repository-level permissions.

Repository names contain slashes, so they are passed as the ``name`` query parameter
where a path would be ambiguous. A repository you may not pull answers 404, exactly like
one that does not exist.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp, Services
from dockyard.auth.errors import Invalid
from dockyard.auth.repositories import Grant, RepositoryInfo, RepositoryPermissions

router = APIRouter(tags=["repositories"])

Name = Query(description="The repository, like 'genomics/samtools'.")


class VisibilityBody(BaseModel):
    visibility: str = Field(description="'private' or 'public'.")


class TeamRoleBody(BaseModel):
    team: str
    role: str | None = Field(description="reader, developer or maintainer; null removes it.")


class UserGrantBody(BaseModel):
    username: str
    action: str = Field("pull", description="'pull' or 'push' (push includes pull).")
    expires_in_days: float | None = Field(None, description="Omit for a permanent permission.")


@router.get("/repositories", summary="Repositories you may pull")
async def list_repositories(
    services: Services,
    actor: Caller,
    workspace: str | None = None,
    last: str = "",
    limit: int = Query(100, ge=1, le=1000),
) -> list[RepositoryInfo]:
    return await services.repositories.visible(actor, workspace, limit, last)


@router.get("/repository", summary="One repository")
async def get_repository(services: Services, actor: Caller, name: str = Name) -> RepositoryInfo:
    return await services.repositories.get(actor, name)


@router.put("/repository/visibility", summary="Make a repository public or private (maintainers)")
async def set_visibility(
    body: VisibilityBody, services: Services, actor: Caller, ip: ClientIp, name: str = Name
) -> RepositoryInfo:
    return await services.repositories.set_visibility(actor, name, body.visibility, ip)


@router.get("/repository/permissions", summary="Teams and users with rights on the repository (maintainers)")
async def get_permissions(services: Services, actor: Caller, name: str = Name) -> RepositoryPermissions:
    return await services.repositories.permissions(actor, name)


@router.put("/repository/permissions/teams", summary="Set a team's role on the repository (maintainers)")
async def set_team_role(
    body: TeamRoleBody, services: Services, actor: Caller, ip: ClientIp, name: str = Name
) -> RepositoryPermissions:
    return await services.repositories.set_team_role(actor, name, body.team, body.role, ip)


@router.put("/repository/permissions/users", summary="Give a user pull or push (maintainers)")
async def grant_user(
    body: UserGrantBody, services: Services, actor: Caller, ip: ClientIp, name: str = Name
) -> Grant:
    expires_at = None
    if body.expires_in_days is not None:
        if body.expires_in_days <= 0:
            raise Invalid("expires_in_days must be positive")
        expires_at = time.time() + body.expires_in_days * 86400
    return await services.repositories.grant_user(
        actor, name, body.username, body.action, expires_at, client_ip=ip
    )


@router.delete("/repository/permissions/users/{username}", status_code=204, summary="Revoke a user's grant")
async def revoke_user(
    username: str, services: Services, actor: Caller, ip: ClientIp, name: str = Name
) -> None:
    await services.repositories.revoke_user(actor, name, username, ip)
