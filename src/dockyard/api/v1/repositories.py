"""Repositories: what you may see, visibility, and repository-level permissions.

A repository's visibility is the visibility of the catalog image of the same name and all its
versions, internal and external: ``PUT /repository/visibility`` and
``PUT /images/{name}/visibility`` change the one setting.

Repository names contain slashes, so they are passed as the ``name`` query parameter
where a path would be ambiguous. A repository you may not pull answers 404, exactly like
one that does not exist.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp, Services
from dockyard.api.v1.inputs import GrantDays, Name, Text
from dockyard.tenancy.repositories import Grant, RepositoryInfo, RepositoryPermissions

router = APIRouter(tags=["repositories"])

Repository = Annotated[Text, Query(description="The repository, like 'genomics/samtools'.")]


class VisibilityBody(BaseModel):
    visibility: Name = Field(description="'private' or 'public'.")


class TeamRoleBody(BaseModel):
    team: Name
    role: Name | None = Field(description="reader, developer or maintainer; null removes it.")


class UserGrantBody(BaseModel):
    username: Name
    action: Name = Field("pull", description="'pull' or 'push' (push includes pull).")
    expires_in_days: GrantDays | None = Field(None, description="Omit for a permanent permission.")


@router.get("/repositories", summary="Repositories you may pull")
async def list_repositories(
    services: Services,
    actor: Caller,
    workspace: Name | None = None,
    last: Text = "",
    limit: int = Query(100, ge=1, le=1000),
) -> list[RepositoryInfo]:
    return await services.repositories.visible(actor, workspace, limit, last)


@router.get("/repository", summary="One repository")
async def get_repository(services: Services, actor: Caller, name: Repository) -> RepositoryInfo:
    return await services.repositories.get(actor, name)


@router.put(
    "/repository/visibility",
    summary="Make a repository and the image of its name public or private (maintainers)",
)
async def set_visibility(
    body: VisibilityBody, services: Services, actor: Caller, ip: ClientIp, name: Repository
) -> RepositoryInfo:
    return await services.repositories.set_visibility(actor, name, body.visibility, ip)


@router.put(
    "/images/{name:path}/visibility",
    summary="Make an image, all its versions and its repository public or private (maintainers)",
)
async def set_image_visibility(
    name: Text, body: VisibilityBody, services: Services, actor: Caller, ip: ClientIp
) -> RepositoryInfo:
    """The same setting as ``PUT /repository/visibility``: an image's visibility is its
    repository's. Recorded in the image's history (before and after) and the audit log."""
    return await services.repositories.set_visibility(actor, name, body.visibility, ip)


@router.get("/repository/permissions", summary="Teams and users with rights on the repository (maintainers)")
async def get_permissions(services: Services, actor: Caller, name: Repository) -> RepositoryPermissions:
    return await services.repositories.permissions(actor, name)


@router.put("/repository/permissions/teams", summary="Set a team's role on the repository (maintainers)")
async def set_team_role(
    body: TeamRoleBody, services: Services, actor: Caller, ip: ClientIp, name: Repository
) -> RepositoryPermissions:
    return await services.repositories.set_team_role(actor, name, body.team, body.role, ip)


@router.put("/repository/permissions/users", summary="Give a user pull or push (maintainers)")
async def grant_user(
    body: UserGrantBody, services: Services, actor: Caller, ip: ClientIp, name: Repository
) -> Grant:
    expires_at = None
    if body.expires_in_days is not None:
        expires_at = time.time() + body.expires_in_days * 86400
    return await services.repositories.grant_user(
        actor, name, body.username, body.action, expires_at, client_ip=ip
    )


@router.delete("/repository/permissions/users/{username}", status_code=204, summary="Revoke a user's grant")
async def revoke_user(
    username: Name, services: Services, actor: Caller, ip: ClientIp, name: Repository
) -> None:
    await services.repositories.revoke_user(actor, name, username, ip)
