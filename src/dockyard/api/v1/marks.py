"""Trust marks: a workspace's mark (admins set it), the public keys it trusts for signatures
(maintainers manage them), and the packages of the SBOMs attached to a version."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, Field

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import Name, Text, no_nul
from dockyard.marks.cosign import MAX_PEM
from dockyard.marks.sbom import VersionSboms
from dockyard.marks.service import TrustedKey, TrustMarks, WorkspaceMark

router = APIRouter(tags=["marks"])


def mark_services(request: Request) -> TrustMarks:
    found: TrustMarks = request.app.state.marks
    return found


Services = Annotated[TrustMarks, Depends(mark_services)]


class MarkBody(BaseModel):
    mark: Literal["official", "verified", "none"] = Field(
        description="official or verified (publisher); none: a user's workspace."
    )


class KeyBody(BaseModel):
    name: Name = Field(description="What the key is called in the workspace.")
    pem: Annotated[str, AfterValidator(no_nul)] = Field(
        max_length=MAX_PEM,
        description="PEM public key (-----BEGIN PUBLIC KEY-----): ECDSA P-256, Ed25519 or RSA.",
    )


@router.get("/workspaces/{name}/mark", summary="A workspace's trust mark: official, verified or user")
async def get_mark(name: Name, services: Services, actor: Caller) -> WorkspaceMark:
    return await services.workspaces.get(name)


@router.put("/workspaces/{name}/mark", summary="Mark a workspace official or verified (administrators)")
async def set_mark(
    name: Name, body: MarkBody, services: Services, actor: Caller, ip: ClientIp
) -> WorkspaceMark:
    return await services.workspaces.set(actor, name, body.mark, ip)


@router.get(
    "/workspaces/{name}/trusted-keys", summary="Public keys the workspace trusts for signatures (members)"
)
async def list_keys(name: Name, services: Services, actor: Caller) -> list[TrustedKey]:
    return await services.keys.list(actor, name)


@router.post(
    "/workspaces/{name}/trusted-keys",
    status_code=201,
    summary="Trust a public key for the workspace's signatures (maintainers)",
)
async def add_key(name: Name, body: KeyBody, services: Services, actor: Caller, ip: ClientIp) -> TrustedKey:
    return await services.keys.add(actor, name, body.name, body.pem, ip)


@router.delete(
    "/workspaces/{name}/trusted-keys/{key_id}", status_code=204, summary="Stop trusting a key (maintainers)"
)
async def remove_key(name: Name, key_id: Name, services: Services, actor: Caller, ip: ClientIp) -> None:
    await services.keys.remove(actor, name, key_id, ip)


@router.get(
    "/images/{name:path}/versions/{version}/sbom",
    summary="The packages listed by the SBOMs (SPDX, CycloneDX) attached to a version",
)
async def version_sbom(name: Text, version: Name, services: Services, actor: Caller) -> VersionSboms:
    return await services.sboms.of(actor, name, version)
