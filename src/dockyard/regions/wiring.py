"""The regions the settings name, as storage drivers, and the services that use them."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.catalog.service import Catalog
from dockyard.cluster.gates import file_gate
from dockyard.db.engine import Database
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import JobContext
from dockyard.regions.service import JOB_KIND, RegionService
from dockyard.regions.tasks import GATE_ENV, RegionCopier
from dockyard.registry.blobs import BlobService
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.regions import Regions
from dockyard.settings import RegionStorage, Settings
from dockyard.storage.base import StorageDriver
from dockyard.storage.factory import create_driver
from dockyard.storage.s3 import S3Config


@dataclass(frozen=True)
class RegionFeature:
    regions: Regions
    service: RegionService
    copier: RegionCopier

    def job_handlers(self) -> dict[str, Callable[[JobContext], Awaitable[None]]]:
        return {JOB_KIND: self.copier.handle}


def region_driver(config: RegionStorage, redirect: bool = False) -> StorageDriver:
    """A region's storage driver (``redirect``: blob GETs answered with presigned S3 URLs)."""
    s3 = None
    if config.driver == "s3":
        s3 = S3Config(
            endpoint=config.endpoint,
            bucket=config.bucket,
            access_key=config.access_key,
            secret_key=config.secret_key.get_secret_value(),
            region=config.region,
            path_style=config.path_style,
            prefix=config.prefix,
            redirect=redirect,
        )
    root = None if config.root is None else config.root.resolve()
    return create_driver(config.driver, root, s3)


def build_regions(
    settings: Settings,
    db: Database,
    storage: StorageDriver,
    catalog: Catalog,
    blobs: BlobService,
    gc: GarbageCollector,
    jobs: JobQueue,
) -> RegionFeature:
    """The default region is ``storage``; the others come from ``DOCKYARD_REGIONS``. With one
    region the registry reads as it always did (no query per blob)."""
    stores = {settings.default_region: storage}
    stores.update({name: region_driver(config) for name, config in settings.regions.items()})
    regions = Regions(db, settings.default_region, settings.effective_region, stores)
    if regions.several:
        blobs.place_with(regions)
        gc.regions = regions
    else:
        blobs.regions = regions  # the default region's name on each blob response
    gate = os.environ.get(GATE_ENV)  # a test seam: see cluster.gates
    copier = RegionCopier(db, regions, file_gate(Path(gate)) if gate else None)
    return RegionFeature(regions, RegionService(db, catalog, regions, jobs), copier)
