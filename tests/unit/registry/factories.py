"""Building registry state for service tests: services, uploaded blobs, pushed images, age."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import update

from dockyard.app.services import Services, build_services
from dockyard.db.engine import Database
from dockyard.oci.digest import Digest
from dockyard.registry import tables
from dockyard.registry.blobs import BlobService
from dockyard.registry.uploads import UploadService
from dockyard.settings import Settings
from dockyard.storage.base import StorageDriver
from tests.support.oci import Blob, Manifest

GRACE = 3600.0


@asynccontextmanager
async def open_services(
    database_url: str, data_dir: Path, storage: StorageDriver, grace: float = GRACE
) -> AsyncIterator[Services]:
    """Build the services on an already migrated database (see ``database_url``)."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        gc_interval_seconds=0,
        gc_grace_seconds=grace,
        access_log=False,
    )
    services = build_services(settings, storage=storage)
    try:
        yield services
    finally:
        await services.close()


def another_worker(services: Services) -> UploadService:
    """An upload service sharing the database and storage but none of the process state,
    as a second server process (or a replica) would."""
    blobs = BlobService(services.db, services.storage, services.generations)
    return UploadService(services.db, services.storage, blobs, services.uploads.locks)


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def push_blob(services: Services, repository: str, blob: Blob | bytes) -> Digest:
    data = blob.data if isinstance(blob, Blob) else blob
    return await services.uploads.monolithic(repository, Digest.of(data), stream(data), len(data))


async def push_manifest(
    services: Services, repository: str, manifest: Manifest, reference: str | None = None
) -> Digest:
    """Push the manifest's blobs and child manifests (by digest), then the manifest itself."""
    for blob in manifest.blobs:
        await push_blob(services, repository, blob)
    for child in manifest.children:
        await push_manifest(services, repository, child)
    result = await services.manifests.put(
        repository, reference or manifest.digest, manifest.body, manifest.media_type, actor=None
    )
    assert result.digest == manifest.digest
    return result.digest


async def age(db: Database, seconds: float) -> None:
    """Make everything recorded so far ``seconds`` older (instead of waiting for it to age)."""
    async with db.write() as conn:
        manifests, blobs, links = tables.manifests.c, tables.blobs.c, tables.repository_blobs.c
        await conn.execute(update(tables.manifests).values(created_at=manifests.created_at - seconds))
        await conn.execute(
            update(tables.blobs).values(
                created_at=blobs.created_at - seconds, touched_at=blobs.touched_at - seconds
            )
        )
        await conn.execute(update(tables.repository_blobs).values(touched_at=links.touched_at - seconds))
        await conn.execute(update(tables.tags).values(updated_at=tables.tags.c.updated_at - seconds))
        await conn.execute(
            update(tables.uploads).values(
                created_at=tables.uploads.c.created_at - seconds,
                updated_at=tables.uploads.c.updated_at - seconds,
            )
        )
