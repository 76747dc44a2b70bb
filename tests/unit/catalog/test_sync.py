"""A tag push never replaces an external version, even one registered while the push was under
way (after the push admission looked): the catalog keeps the external version and says so in
the image's history. On a real metadata database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.base import Principal
from dockyard.catalog.inspections import JOB_KIND
from dockyard.catalog.tables import image_events, image_versions, images
from dockyard.jobs.tables import jobs
from dockyard.registry.events import Actor, ManifestPushed, TagDeleted
from dockyard.storage.memory import MemoryDriver
from tests.support.catalog import gzip_layer, image_config
from tests.support.oci import oci_manifest
from tests.unit.registry.factories import open_services, push_manifest

REPOSITORY = "lab/alpine"
EXTERNAL = "docker.io/library/alpine:latest"


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with open_services(database_url, tmp_path, MemoryDriver()) as built:
        yield built


async def test_a_push_event_for_an_external_version_keeps_it(services: Services) -> None:
    manifest = oci_manifest(image_config("amd64"), [gzip_layer("alpine")])
    await push_manifest(services, REPOSITORY, manifest, "v1")  # the image exists, internal v1
    now = time.time()
    async with services.db.write() as conn:
        image_id = (await conn.execute(select(images.c.id).where(images.c.name == REPOSITORY))).scalar_one()
        await conn.execute(
            image_versions.insert().values(
                image_id=image_id,
                version="latest",
                source="external",
                status="unverified",
                external_reference=EXTERNAL,
                created_at=now,
                updated_at=now,
            )
        )

    await services.catalog_sync(
        ManifestPushed(REPOSITORY, manifest.digest, manifest.media_type, "latest", 1, None)
    )

    async with services.db.read() as conn:
        kept = (await conn.execute(select(image_versions).where(image_versions.c.version == "latest"))).one()
        last = (await conn.execute(select(image_events).order_by(image_events.c.id.desc()))).first()
        queued = (await conn.execute(select(jobs.c.dedupe_key).where(jobs.c.kind == JOB_KIND))).all()
    assert (kept.source, kept.external_reference, kept.status) == ("external", EXTERNAL, "unverified")
    assert last is not None
    assert (last.kind, last.version) == ("push.ignored", "latest")
    assert json.loads(last.detail) == {
        "digest": manifest.digest,
        "reason": f"the version is external ({EXTERNAL}); the catalog keeps it",
    }
    assert [row[0].split(":")[2] for row in queued] == ["v1"]  # no inspection for the ignored push


@pytest.mark.parametrize(
    ("actor", "who"),
    [(Actor(Principal("alice", kind="user", id=1), "192.0.2.1"), "alice"), (None, "system")],
    ids=["a user", "no one"],
)
async def test_the_history_names_the_actor_the_event_carries(
    services: Services, actor: Actor | None, who: str
) -> None:
    manifest = oci_manifest(image_config("amd64"), [gzip_layer("alpine")])
    await push_manifest(services, REPOSITORY, manifest, "v1")

    await services.catalog_sync(TagDeleted(REPOSITORY, "v1", actor))

    async with services.db.read() as conn:
        last = (await conn.execute(select(image_events).order_by(image_events.c.id.desc()))).first()
    assert last is not None
    assert (last.kind, last.version, last.actor) == ("version.deleted", "v1", who)
