"""Registry profiles: how a workspace reaches other registries (maintainers), and the
platform-wide ones every workspace may use (administrators manage them)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import Document, Name, Text
from dockyard.errors import NotFound
from dockyard.upstream.credentials import ProfileSettings, StoredCredential
from dockyard.upstream.profiles import MAX_CA_BUNDLE
from dockyard.upstream.registries import CheckResult, Registries

router = APIRouter(tags=["registries"])

Kind = Literal["dockerhub", "quay", "gitlab", "ghcr", "ecr", "ngc", "distribution"]
Host = Name  # a registry host, e.g. quay.io or registry.example.org:5000
PageSize = Annotated[int, Query(ge=1, le=500, description="At most this many profiles.")]
After = Annotated[Name | None, Query(description="Only hosts sorting after this one.")]


def registries_service(request: Request) -> Registries:
    found: Registries | None = request.app.state.catalog.registries
    if found is None:
        raise NotFound("registry profiles are not served here")
    return found


Service = Annotated[Registries, Depends(registries_service)]


class ProfileBody(BaseModel):
    registry: Host
    kind: Kind = "distribution"
    username: Name = Field("", description="The user, robot or (ECR) access key id; empty: anonymous.")
    secret: Text = Field("", description="Password, token or (ECR) secret access key; stored encrypted.")
    plain_http: bool | None = Field(
        None, description="Speak plain HTTP (administrators only); unset: only for loopback hosts."
    )
    tls_verify: bool = True
    ca_bundle: Document | None = Field(
        None, description=f"PEM certificates of a private CA to trust ({MAX_CA_BUNDLE // 1024} KiB at most)."
    )
    ecr_account: Name | None = Field(None, description="ECR: the 12-digit account id.")
    ecr_region: Name | None = Field(None, description="ECR: the region, e.g. us-west-2.")

    def settings(self) -> ProfileSettings:
        return ProfileSettings(
            self.kind, self.plain_http, self.tls_verify, self.ca_bundle, self.ecr_account, self.ecr_region
        )


@router.get("/workspaces/{workspace}/registries", summary="The workspace's registry profiles (maintainers)")
async def list_profiles(
    workspace: Name, service: Service, actor: Caller, limit: PageSize = 100, after: After = None
) -> list[StoredCredential]:
    return await service.list(actor, workspace, limit=limit, after=after)


@router.put("/workspaces/{workspace}/registries", summary="Keep a registry profile (maintainers)")
async def put_profile(
    workspace: Name, body: ProfileBody, service: Service, actor: Caller, ip: ClientIp
) -> StoredCredential:
    return await service.put(actor, workspace, body.registry, body.username, body.secret, body.settings(), ip)


@router.get("/workspaces/{workspace}/registries/{registry}", summary="One registry profile (maintainers)")
async def show_profile(workspace: Name, registry: Host, service: Service, actor: Caller) -> StoredCredential:
    return await service.show(actor, workspace, registry)


@router.delete("/workspaces/{workspace}/registries/{registry}", status_code=204, summary="Forget it")
async def delete_profile(
    workspace: Name, registry: Host, service: Service, actor: Caller, ip: ClientIp
) -> None:
    await service.remove(actor, workspace, registry, ip)


@router.post(
    "/workspaces/{workspace}/registries/{registry}/check",
    summary="Log in as the workspace would; a problem with a `reason` when that fails",
)
async def check_profile(workspace: Name, registry: Host, service: Service, actor: Caller) -> CheckResult:
    return await service.check(actor, workspace, registry)


@router.get("/registries", summary="Platform-wide registry profiles (signed-in users)")
async def list_platform(
    service: Service, actor: Caller, limit: PageSize = 100, after: After = None
) -> list[StoredCredential]:
    return await service.list(actor, None, limit=limit, after=after)


@router.put("/registries", summary="Keep a platform-wide registry profile (administrators)")
async def put_platform(body: ProfileBody, service: Service, actor: Caller, ip: ClientIp) -> StoredCredential:
    return await service.put(actor, None, body.registry, body.username, body.secret, body.settings(), ip)


@router.get("/registries/{registry}", summary="One platform-wide registry profile")
async def show_platform(registry: Host, service: Service, actor: Caller) -> StoredCredential:
    return await service.show(actor, None, registry)


@router.delete("/registries/{registry}", status_code=204, summary="Forget it (administrators)")
async def delete_platform(registry: Host, service: Service, actor: Caller, ip: ClientIp) -> None:
    await service.remove(actor, None, registry, ip)


@router.post("/registries/{registry}/check", summary="Log in with the platform-wide profile (administrators)")
async def check_platform(registry: Host, service: Service, actor: Caller) -> CheckResult:
    return await service.check(actor, None, registry)
