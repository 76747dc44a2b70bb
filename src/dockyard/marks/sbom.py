"""The packages an SBOM attached to a version lists: SPDX JSON ``packages[]`` (``name``,
``versionInfo``) and CycloneDX JSON ``components[]`` (``name``, ``version``), read from the
SBOM's first layer (an OCI referrer or cosign's ``.sbom`` tag), bounded in bytes and count."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockyard.auth.policy import Subject
from dockyard.catalog.service import Catalog
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidValue
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import BlobUnknown, ManifestUnknown
from dockyard.registry.manifests import ManifestService

MAX_SBOM = 8 * 1024 * 1024  # bytes of one SBOM document read
MAX_PACKAGES = 10_000  # per version
MAX_SBOMS = 5  # documents read per version


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class Sbom:
    digest: str  # the SBOM manifest's
    format: str  # spdx, cyclonedx or unknown
    packages: list[Package]
    truncated: bool = False
    problem: str | None = None  # why no packages were read


@dataclass(frozen=True)
class VersionSboms:
    image: str
    version: str
    sboms: list[Sbom]


def _text(value: Any) -> str:
    return value[:255] if isinstance(value, str) else ""


def parse(document: bytes) -> tuple[str, list[Package], bool]:
    """The format of an SBOM document, its packages (at most :data:`MAX_PACKAGES`), truncated."""
    parsed = json.loads(document)
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    if "spdxVersion" in parsed:
        kind, items, version_key = "spdx", parsed.get("packages"), "versionInfo"
    elif parsed.get("bomFormat") == "CycloneDX" or "components" in parsed:
        kind, items, version_key = "cyclonedx", parsed.get("components"), "version"
    else:
        return "unknown", [], False
    listed = [item for item in (items if isinstance(items, list) else []) if isinstance(item, dict)]
    packages = [Package(_text(i.get("name")), _text(i.get(version_key))) for i in listed[:MAX_PACKAGES]]
    return kind, packages, len(listed) > MAX_PACKAGES


def _first_layer(manifest: bytes) -> tuple[str, int] | None:
    parsed = json.loads(manifest)
    layers = parsed.get("layers") if isinstance(parsed, dict) else None
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
        return None
    digest, size = layers[0].get("digest"), layers[0].get("size")
    return (digest, size) if isinstance(digest, str) and isinstance(size, int) else None


class Sboms:
    def __init__(self, catalog: Catalog, manifests: ManifestService, blobs: BlobService) -> None:
        self.catalog = catalog
        self.manifests = manifests
        self.blobs = blobs

    async def _read(self, repository: str, digest: str) -> Sbom:
        try:
            layer = _first_layer((await self.manifests.get(repository, digest)).content)
            if layer is None:
                return Sbom(digest, "unknown", [], problem="the SBOM manifest has no layer")
            if layer[1] > MAX_SBOM:
                return Sbom(digest, "unknown", [], problem=f"the SBOM is over {MAX_SBOM} bytes")
            document = await self.blobs.read(repository, Digest.parse(layer[0]), MAX_SBOM)
            kind, packages, truncated = parse(document)
        except (ManifestUnknown, BlobUnknown, InvalidValue):
            return Sbom(digest, "unknown", [], problem="the SBOM is not stored")
        except (ValueError, UnicodeDecodeError):
            return Sbom(digest, "unknown", [], problem="the SBOM is not JSON")
        return Sbom(digest, kind, packages, truncated)

    async def of(self, actor: Subject, image: str, version: str) -> VersionSboms:
        """The SBOMs attached to a version the actor sees (NotFound otherwise), with their packages."""
        found = await self.catalog.version(actor, image, version)
        attached = [a.digest for a in found.signatures if a.kind == "sbom"][:MAX_SBOMS]
        return VersionSboms(image, version, [await self._read(image, digest) for digest in attached])
