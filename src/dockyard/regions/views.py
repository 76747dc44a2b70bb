"""What the regions service returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VersionRegion:
    region: str
    status: str  # copying, available, failed, removing
    reason: str | None
    bytes_done: int
    bytes_total: int
    blobs_done: int
    blobs_total: int
    job_id: int | None
    updated_at: float | None


@dataclass(frozen=True)
class VersionRegions:
    image: str
    version: str
    regions: list[VersionRegion]


@dataclass(frozen=True)
class RegionUsage:
    name: str
    default: bool
    local: bool
    blobs: int | None  # platform admins only
    bytes: int | None
