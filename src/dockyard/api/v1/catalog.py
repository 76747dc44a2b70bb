"""The catalog: images, versions (internal and external), verification, what a user may
run, pinned references, storage usage and workspace policies."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp
from dockyard.api.v1.inputs import Name, Names, Offset, Text
from dockyard.builds.rebuilds import Rebuilds
from dockyard.catalog.deletion import Deletions
from dockyard.catalog.immutability import MAX_RULES, TagImmutability, TagRules
from dockyard.catalog.imports import Imports
from dockyard.catalog.lineage_backfill import LineageBackfill
from dockyard.catalog.lineage_views import LineagedVersion, LineageReader, with_lineage
from dockyard.catalog.packages import PackageIndex
from dockyard.catalog.queries import VersionPage
from dockyard.catalog.service import Catalog, Page, VersionSettings
from dockyard.catalog.usage import ImageUsage, Usage, WorkspaceUsage
from dockyard.catalog.verify import Pinned, Runnable, Verification
from dockyard.catalog.views import ImageEvent, ImageView, VersionView
from dockyard.marks.conditions import MarkName, image_has, version_is
from dockyard.marks.views import MarkViews
from dockyard.upstream.credentials import CredentialStore, StoredCredential
from dockyard.upstream.registries import Registries

router = APIRouter(tags=["catalog"])


@dataclass
class CatalogServices:
    catalog: Catalog
    verification: Verification
    usage: Usage
    credentials: CredentialStore
    public_url: str
    deletions: Deletions
    immutability: TagImmutability
    registries: Registries | None = None  # registry profiles (api.v1.registries)
    imports: Imports | None = None  # imports by URL (api/v1/imports.py)
    marks: MarkViews | None = None  # trust marks on the views (dockyard.marks)
    lineage: LineageReader | None = None  # bases and children (api/v1/lineage.py)
    rebuilds: Rebuilds | None = None
    lineage_backfill: LineageBackfill | None = None
    packages: PackageIndex | None = None  # the software inside (api/v1/packages.py)


def catalog_services(request: Request) -> CatalogServices:
    found: CatalogServices = request.app.state.catalog
    return found


Services = Annotated[CatalogServices, Depends(catalog_services)]


def registry_host(request: Request, services: CatalogServices) -> str:
    """The registry's host as clients name it: from DOCKYARD_PUBLIC_URL, else the request."""
    if services.public_url:
        return urlsplit(services.public_url).netloc
    return request.headers.get("host", "localhost")


VISIBILITY = (
    "'public' or 'private': the image's and all its versions' (its repository's). Sets it for a new "
    "image; elsewhere accepted only when it is the image's (PUT /api/v1/images/{name}/visibility changes it)."
)
ACCESS = "Deprecated: visibility is per image ('public' is public; 'workspace' and 'private' are private)."


class VersionFields(BaseModel):
    type: Name | None = Field(None, description="'tool' or 'bench'.")
    visibility: Name | None = Field(None, description=VISIBILITY)
    access: Name | None = Field(None, description=ACCESS, deprecated=True)
    regions: Names | None = None
    cluster_compatibility: Names | None = Field(None, description="Bench images: clusters they run on.")

    def settings(self) -> VersionSettings:
        return VersionSettings(
            self.type, self.access, self.regions, self.cluster_compatibility, visibility=self.visibility
        )


class ExternalImage(VersionFields):
    workspace: Name
    reference: Text = Field(
        description="e.g. docker.io/alpine:3.20, quay.io/biocontainers/samtools:1.19--h50ea8bc_0"
    )
    name: Text | None = Field(None, description="Default: the reference's last path component.")
    version: Name | None = Field(None, description="Default: the tag (or the short digest).")
    description: Text = ""


class ExternalVersion(VersionFields):
    reference: Text
    version: Name | None = None


class ImageChange(BaseModel):
    description: Text


class Policy(BaseModel):
    require_amd64: bool = Field(description="Refuse versions without a linux/amd64 platform.")


@router.get(
    "/images", summary="Images you may see (filter by workspace, source, type, status, platform, text)"
)
async def list_images(
    services: Services,
    actor: Caller,
    workspace: Name | None = None,
    source: Annotated[Name | None, Query(description="internal or external")] = None,
    type: Annotated[Name | None, Query(description="tool or bench")] = None,
    status: Name | None = None,
    platform: Annotated[Name | None, Query(description="e.g. linux/amd64")] = None,
    q: Annotated[Text | None, Query(description="Text in the name or description.")] = None,
    mark: Annotated[MarkName | None, Query(description="A trust mark the image carries.")] = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> Page:
    page = await services.catalog.search(
        actor,
        workspace=workspace,
        source=source,
        kind=type,
        status=status,
        platform=platform,
        query=q,
        limit=limit,
        offset=offset,
        condition=image_has(mark) if mark else None,
    )
    if services.marks is None:
        return page
    return dataclasses.replace(page, items=await services.marks.images(actor, page.items))


@router.get(
    "/versions",
    summary="Versions you may see, one row each (filter, sort and page; for tables)",
)
async def list_versions(
    services: Services,
    actor: Caller,
    workspace: Name | None = None,
    source: Annotated[Name | None, Query(description="internal or external")] = None,
    type: Annotated[Name | None, Query(description="tool or bench")] = None,
    status: Name | None = None,
    platform: Annotated[
        Name | None, Query(description="e.g. linux/arm64 (any variant) or linux/arm64/v8 (only it)")
    ] = None,
    q: Annotated[Text | None, Query(description="Text in the image's name or description.")] = None,
    mark: Annotated[MarkName | None, Query(description="A trust mark the version carries.")] = None,
    sort: Annotated[
        Literal["name", "version", "source", "type", "status", "size", "modified"],
        Query(description="size: compressed size (unknown counts as largest); modified: last change."),
    ] = "name",
    order: Literal["asc", "desc"] = "asc",
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> VersionPage:
    """Ties are broken by image name, then version (in the same order), so pages are stable."""
    page = await services.catalog.versions(
        actor,
        workspace=workspace,
        source=source,
        kind=type,
        status=status,
        platform=platform,
        query=q,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
        condition=version_is(mark) if mark else None,
    )
    if services.marks is None:
        return page
    return dataclasses.replace(page, items=await services.marks.versions(actor, page.items))


@router.post("/images", status_code=201, summary="Register an external image by reference (developers)")
async def create_external(body: ExternalImage, services: Services, actor: Caller) -> LineagedVersion:
    created = await services.catalog.register_external(
        actor,
        body.workspace,
        body.reference,
        name=body.name,
        version=body.version,
        description=body.description,
        settings=body.settings(),
    )
    return await _shown(services, actor, await _policy_check(services, actor, created, new_image=True))


async def _shown(services: CatalogServices, actor: Caller, view: VersionView) -> LineagedVersion:
    """A version as every endpoint answers it: with its base and its trust marks (what
    ``GET .../versions/{version}`` reads back)."""
    found = await services.lineage.shown(actor, view) if services.lineage else with_lineage(view, None)
    return (await services.marks.versions(actor, [found]))[0] if services.marks else found


async def _policy_check(
    services: CatalogServices, actor: Caller, created: VersionView, *, new_image: bool
) -> VersionView:
    created = await services.verification.keep_private_upstream_private(actor, created, new_image=new_image)
    workspace = created.image.split("/", 1)[0]
    if await services.catalog.get_policy(actor, workspace):
        return await services.verification.check_platforms(
            actor, created.image, created.version, new_image=new_image
        )
    return created


@router.get("/runnable", summary="Versions you may run, with a pull reference (for compute nodes)")
async def runnable(
    request: Request,
    services: Services,
    actor: Caller,
    workspace: Name | None = None,
    type: Name | None = None,
    status: Name | None = None,
    platform: Name | None = None,
) -> list[Runnable]:
    return await services.verification.runnable(
        actor,
        registry_host=registry_host(request, services),
        workspace=workspace,
        kind=type,
        status=status,
        platform=platform,
    )


@router.get("/workspaces/{workspace}/usage", summary="Bytes stored per workspace, image and version")
async def workspace_usage(workspace: Name, services: Services, actor: Caller) -> WorkspaceUsage:
    return await services.usage.workspace(actor, workspace)


@router.get("/workspaces/{workspace}/catalog-policy", summary="The workspace's catalog policy")
async def get_policy(workspace: Name, services: Services, actor: Caller) -> Policy:
    return Policy(require_amd64=await services.catalog.get_policy(actor, workspace))


@router.put("/workspaces/{workspace}/catalog-policy", summary="Set the catalog policy (owners)")
async def set_policy(workspace: Name, body: Policy, services: Services, actor: Caller) -> Policy:
    return Policy(require_amd64=await services.catalog.set_policy(actor, workspace, body.require_amd64))


class ImmutableTags(BaseModel):
    patterns: list[Name] = Field(
        [], max_length=MAX_RULES, description="Tags matching one of these (globs: * ? [...]) are never moved."
    )
    exceptions: list[Name] = Field(
        [], max_length=MAX_RULES, description="Tags matching one of these stay movable, e.g. 'latest'."
    )


@router.get("/workspaces/{workspace}/immutable-tags", summary="Tags a push may not move (readers)")
async def get_immutable_tags(workspace: Name, services: Services, actor: Caller) -> ImmutableTags:
    rules = await services.immutability.get(actor, workspace)
    return ImmutableTags(patterns=rules.patterns, exceptions=rules.exceptions)


@router.put(
    "/workspaces/{workspace}/immutable-tags",
    summary="Set the tags a push may not move (owners)",
    description="A push that would point an immutable tag at another manifest is refused with DENIED; "
    "a tag's first push and pushing the same manifest again are allowed.",
)
async def set_immutable_tags(
    workspace: Name, body: ImmutableTags, services: Services, actor: Caller, ip: ClientIp
) -> ImmutableTags:
    rules = await services.immutability.set(actor, workspace, TagRules(body.patterns, body.exceptions), ip)
    return ImmutableTags(patterns=rules.patterns, exceptions=rules.exceptions)


class CredentialBody(BaseModel):
    registry: Name = Field(description="The registry host, e.g. quay.io or registry.example.org:5000.")
    username: Name
    secret: Text = Field(description="A password or access token; stored encrypted, never shown again.")


@router.get("/workspaces/{workspace}/upstream-credentials", summary="Registry credentials kept (maintainers)")
async def list_credentials(workspace: Name, services: Services, actor: Caller) -> list[StoredCredential]:
    return await services.credentials.stored(actor, workspace)


@router.put(
    "/workspaces/{workspace}/upstream-credentials", summary="Keep credentials for a registry (maintainers)"
)
async def put_credentials(
    workspace: Name, body: CredentialBody, services: Services, actor: Caller, ip: ClientIp
) -> StoredCredential:
    return await services.credentials.put(actor, workspace, body.registry, body.username, body.secret, ip)


@router.delete(
    "/workspaces/{workspace}/upstream-credentials/{registry}",
    status_code=204,
    summary="Forget them (maintainers)",
)
async def delete_credentials(
    workspace: Name, registry: Name, services: Services, actor: Caller, ip: ClientIp
) -> None:
    await services.credentials.remove(actor, workspace, registry, ip)


@router.delete(
    "/repository",
    status_code=204,
    tags=["repositories"],
    summary="Delete a repository: its catalog image with it, if it has one (maintainers)",
)
async def delete_repository(
    services: Services,
    actor: Caller,
    ip: ClientIp,
    name: Annotated[Text, Query(description="The repository, like 'genomics/samtools'.")],
) -> None:
    await services.deletions.delete_repository(actor, name, ip)


# Image names contain '/', so the routes below take the name as a path and are declared
# from the most specific to the least.


@router.get(
    "/images/{name:path}/versions/{version}/resolve", summary="Resolve name:version to a pinned reference"
)
async def resolve(name: Text, version: Name, request: Request, services: Services, actor: Caller) -> Pinned:
    return await services.verification.resolve(actor, name, version, registry_host(request, services))


@router.post(
    "/images/{name:path}/versions/{version}/verify", summary="Check an external version upstream now"
)
async def verify(name: Text, version: Name, services: Services, actor: Caller) -> LineagedVersion:
    return await _shown(services, actor, await services.verification.verify(actor, name, version))


@router.get("/images/{name:path}/versions/{version}", summary="One version")
async def get_version(name: Text, version: Name, services: Services, actor: Caller) -> LineagedVersion:
    """With ``based_on`` (null: none known), ``base_updated`` and the trust ``marks``."""
    return await _shown(services, actor, await services.catalog.version(actor, name, version))


@router.patch("/images/{name:path}/versions/{version}", summary="Change a version's type, regions, clusters")
async def update_version(
    name: Text, version: Name, body: VersionFields, services: Services, actor: Caller
) -> LineagedVersion:
    return await _shown(
        services, actor, await services.catalog.update_version(actor, name, version, body.settings())
    )


@router.delete(
    "/images/{name:path}/versions/{version}",
    status_code=204,
    summary="Delete a version (maintainers): an external one, or an internal one with its tag",
)
async def delete_version(name: Text, version: Name, services: Services, actor: Caller, ip: ClientIp) -> None:
    """An internal version's tag goes from the registry at once (its manifest and bytes once
    the garbage collector finds them unreferenced). Audited and recorded in the history."""
    await services.deletions.delete_version(actor, name, version, ip)


@router.post("/images/{name:path}/versions", status_code=201, summary="Add an external version (developers)")
async def add_version(
    name: Text, body: ExternalVersion, services: Services, actor: Caller
) -> LineagedVersion:
    workspace = name.partition("/")[0]
    created = await services.catalog.register_external(
        actor,
        workspace,
        body.reference,
        name=name,
        version=body.version,
        settings=body.settings(),
        new_image=False,
    )
    return await _shown(services, actor, await _policy_check(services, actor, created, new_image=False))


@router.get("/images/{name:path}/events", summary="The image's history (also of a deleted image)")
async def events(name: Text, services: Services, actor: Caller) -> list[ImageEvent]:
    """Newest first. A deletion shows as ``image.deleted`` (with the versions that went),
    followed by the history the image had; the workspace's readers still see it after."""
    return await services.deletions.events(actor, name)


@router.get("/images/{name:path}/usage", summary="Bytes stored for the image and each internal version")
async def image_usage(name: Text, services: Services, actor: Caller) -> ImageUsage:
    return (await services.usage.image(actor, name))[0]


@router.get("/images/{name:path}", summary="One image and the versions you may see")
async def get_image(name: Text, services: Services, actor: Caller) -> ImageView:
    found = await services.catalog.get(actor, name)
    return (await services.marks.images(actor, [found]))[0] if services.marks else found


@router.patch("/images/{name:path}", summary="Change an image's description (developers)")
async def update_image(name: Text, body: ImageChange, services: Services, actor: Caller) -> ImageView:
    return await services.catalog.update_image(actor, name, body.description)


@router.delete(
    "/images/{name:path}",
    status_code=204,
    summary="Delete an image: every version, internal or external, its tags and repository (maintainers)",
)
async def delete_image(name: Text, services: Services, actor: Caller, ip: ClientIp) -> None:
    """Its name is free again afterwards; /v2 answers NAME_UNKNOWN for the repository at once,
    and the garbage collector reclaims the bytes no other repository uses. Audited, and the
    history stays readable (GET .../events)."""
    await services.deletions.delete_image(actor, name, ip)
