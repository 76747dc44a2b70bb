"""The composition root builds each service once, and closing the services lets go of what
they hold.

One process must hold one copy of each stateful service: the archive uploads and the
registry's blobs charge the same quota ``Ledger``; the API, the
registry and the background jobs see the same catalog, credentials and authorizer; the
registry's events reach each listener once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from dockyard.api.v1.archives import ArchiveServices
from dockyard.api.v1.catalog import CatalogServices
from dockyard.app.asgi import Dockyard, create_app
from dockyard.app.services import build_services, build_upload_locks
from dockyard.auth.tables import audit_log
from dockyard.ops.access import AccessLog
from dockyard.registry.http.router import RegistryApp
from dockyard.settings import Settings
from dockyard.transfer.imports.holders import Holders
from tests.support.oci import oci_manifest
from tests.unit.conftest import MetadataDatabases
from tests.unit.registry.factories import push_manifest


@pytest.fixture
async def settings(tmp_path: Path, metadata_databases: MetadataDatabases) -> AsyncIterator[Settings]:
    """Dev-mode settings on a migrated SQLite database in ``tmp_path``."""
    url = await metadata_databases.migrated_sqlite(tmp_path / "metadata.db")
    yield Settings(
        data_dir=tmp_path, database_url=url, auth_mode="dev", gc_interval_seconds=0, access_log=False
    )
    metadata_databases.discard(url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Dockyard]:
    built = create_app(settings)
    try:
        yield built
    finally:
        await built.services.close()


def open_files_under(folder: Path) -> list[Path]:
    """The files this process has open under ``folder`` (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor listdir itself used, closed since
            continue
        if target.is_relative_to(folder.resolve()):
            found.append(target)
    return found


async def test_the_api_and_the_archive_uploads_share_one_usage_and_catalog(app: Dockyard) -> None:
    services = app.services
    catalog_api = app.api.state.catalog
    archives_api = app.api.state.archives
    assert isinstance(catalog_api, CatalogServices)
    assert isinstance(archives_api, ArchiveServices)

    assert catalog_api.usage is services.usage
    assert services.archives.ledger is services.ledger
    assert services.blobs.ledger is services.ledger
    assert services.usage.catalog is services.catalog
    assert catalog_api.catalog is services.catalog
    assert catalog_api.verification is services.verification
    assert catalog_api.credentials is services.credentials is services.verification.credentials
    assert archives_api.uploads is services.archives
    assert archives_api.versions is services.archive_versions
    assert services.archive_versions.uploads is services.archives
    assert app.api.state.exports is services.exports
    assert app.api.state.builds is services.builds
    assert app.api.state.identity is services.identity


async def test_the_registry_and_the_lifespan_use_the_built_services(app: Dockyard) -> None:
    services = app.services
    assert isinstance(app.registry, AccessLog)
    router = app.registry.app
    assert isinstance(router, RegistryApp)
    assert router.ctx.authorizer is services.authorizer
    assert router.ctx.manifests is services.manifests
    assert router.ctx.uploads is services.uploads
    assert services.uploads.locks is services.locks
    assert app.lifespan.services is services
    # One liveness identity per process: the purge never takes this process's imports for a dead one's.
    assert services.archive_purge.reclaimer.holders is services.archives.holders


async def test_a_push_reaches_the_audit_log_once(app: Dockyard) -> None:
    services = app.services
    await push_manifest(services, "team/app", oci_manifest(), "v1")

    async with services.db.read() as conn:
        pushes = await conn.execute(
            select(func.count()).select_from(audit_log).where(audit_log.c.action == "manifest.push")
        )
        assert pushes.scalar_one() == 1


async def test_closing_releases_the_database_and_the_liveness_lock(settings: Settings) -> None:
    services = build_services(settings)
    await services.generations.start()
    async with services.db.write() as conn:
        await conn.execute(text("SELECT 1"))
    holders = services.archives.holders
    await holders.hold()  # as this process's first archive import does
    # Another process on this host asks whether this one lives.
    other = Holders(build_upload_locks(settings, services.db))
    assert not await other.gone(holders.me)
    assert open_files_under(settings.data_dir)

    await services.close()

    assert open_files_under(settings.data_dir) == []
    assert await other.gone(holders.me)
