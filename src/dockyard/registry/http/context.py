"""What the /v2 handlers work with: the registry's services and the authorizer."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth.base import Authorizer
from dockyard.registry.blobs import BlobService
from dockyard.registry.manifests import ManifestService
from dockyard.registry.pulls import PullRecorder
from dockyard.registry.pullthrough import PullThrough
from dockyard.registry.uploads import UploadService


@dataclass(frozen=True)
class RegistryContext:
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    authorizer: Authorizer
    pulls: PullRecorder | None = None  # notes manifest GETs for retention (no write per pull)
    pull_through: PullThrough | None = None  # fills cache workspaces from their upstreams
