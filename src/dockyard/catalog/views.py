"""What the catalog shows: images and versions as the API and CLI see them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from dockyard.oci.reference import parse_reference

INTERNAL, EXTERNAL = "internal", "external"
KINDS = ("tool", "bench")
PUBLIC, PRIVATE = "public", "private"
VISIBILITIES = (PUBLIC, PRIVATE)  # an image's, which is its repository's
INTERNAL_STATUSES = ("pending", "available", "failed")
EXTERNAL_STATUSES = ("unverified", "reachable", "unreachable")
RUNNABLE = frozenset({"available", "reachable", "unverified"})


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True)
class UpstreamInfo:
    registry: str
    repository: str
    provider: str  # dockerhub, quay, ghcr, gitlab, ecr, nvcr, generic
    ecr_account_id: str | None
    ecr_region: str | None


def upstream_info(reference: str | None) -> UpstreamInfo | None:
    if reference is None:
        return None
    ref = parse_reference(reference)
    return UpstreamInfo(ref.registry, ref.repository, str(ref.provider), ref.ecr_account_id, ref.ecr_region)


@dataclass(frozen=True)
class Accessory:
    """A signature, attestation or SBOM attached to a version (:mod:`.accessories`)."""

    kind: str  # signature, attestation, sbom or other
    digest: str
    tag: str | None  # cosign's sha256-<hex>.sig|.att|.sbom; None for an OCI 1.1 referrer
    artifact_type: str | None
    media_type: str
    size: int
    pushed_at: float


@dataclass(frozen=True)
class Marks:
    """Trust marks, computed by :mod:`dockyard.marks` for what the caller already sees."""

    marks: list[str]  # official, verified or user; dockerfile, built, signed, sbom
    signature: str  # verified, invalid, unverified ("signature attached") or none
    signed_by: str | None = None  # the id of the trusted key that verified it
    build_run: int | None = None  # a version's: the build run that produced it (provenance)


@dataclass(frozen=True)
class Imported:
    """Where an imported version came from: the external reference and the digest it had
    there, when it was imported and by whom."""

    source_reference: str
    source_digest: str | None
    imported_at: float
    imported_by: str


@dataclass(frozen=True)
class VersionView:
    image: str
    version: str
    source: str
    kind: str
    cluster_compatibility: list[str]
    regions: list[str]
    status: str
    status_reason: str | None
    external_reference: str | None
    upstream: UpstreamInfo | None  # external versions: where the reference points
    digest: str | None
    media_type: str | None
    compressed_size: int | None
    uncompressed_size: int | None
    platforms: list[str]
    has_amd64: bool | None  # None until the platforms are known
    warnings: list[Warning]
    checked_at: float | None
    created_at: float
    created_by: str
    updated_at: float
    signatures: list[Accessory]  # signatures, attestations and SBOMs attached to the digest
    imported: Imported | None  # where an imported version came from (import by URL)
    marks: Marks | None = None  # trust marks (dockyard.marks), where the API adds them


@dataclass(frozen=True)
class ImageView:
    name: str
    workspace: str
    description: str
    source: str  # internal, external or mixed
    visibility: str  # public or private: the image's and all its versions', its repository's
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str
    built_at: float | None
    built_by: str | None
    versions: list[VersionView]
    may_delete: bool = False  # the caller may delete the image and its versions (the UI asks)
    marks: Marks | None = None  # trust marks (dockyard.marks), where the API adds them


def image_view(m: Any, versions: list[VersionView], source: str, may_delete: bool) -> ImageView:
    """An image row (``images`` with ``workspace_name`` and its repository's ``visibility``) as
    the API shows it."""
    return ImageView(
        name=m["name"],
        workspace=m["workspace_name"],
        description=m["description"],
        source=source,
        visibility=m["visibility"] or PRIVATE,  # no repository row: nobody but members pulls
        created_at=m["created_at"],
        created_by=m["created_by"],
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
        built_at=m["built_at"],
        built_by=m["built_by"],
        versions=versions,
        may_delete=may_delete,
    )


@dataclass(frozen=True)
class ImageEvent:
    id: int
    at: float
    actor: str
    kind: str
    version: str | None
    detail: dict[str, Any]


def version_view(image_name: str, row: Row[Any]) -> VersionView:
    m = row._mapping
    platforms = json.loads(m["platforms"])
    known = bool(platforms) or m["status"] in ("available", "reachable")
    return VersionView(
        image=image_name,
        version=m["version"],
        source=m["source"],
        kind=m["kind"],
        cluster_compatibility=json.loads(m["cluster_compatibility"]),
        regions=json.loads(m["regions"]),
        status=m["status"],
        status_reason=m["status_reason"],
        external_reference=m["external_reference"],
        upstream=upstream_info(m["external_reference"]),
        digest=m["digest"],
        media_type=m["media_type"],
        compressed_size=m["compressed_size"],
        uncompressed_size=m["uncompressed_size"],
        platforms=platforms,
        has_amd64=any(p.startswith("linux/amd64") for p in platforms) if known else None,
        warnings=[Warning(**w) for w in json.loads(m["warnings"])],
        checked_at=m["checked_at"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        updated_at=m["updated_at"],
        signatures=[],
        imported=Imported(**json.loads(m["imported_from"])) if m.get("imported_from") else None,
    )


def source_of(versions: list[VersionView]) -> str:
    kinds = {v.source for v in versions}
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed" if kinds else INTERNAL
