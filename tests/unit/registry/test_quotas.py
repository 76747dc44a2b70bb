"""The quota ledger on SQLite and PostgreSQL: each blob counted once per workspace, charged in
the link's transaction (a blob over the limit is never linked), given back when its last link
in the workspace goes (blob DELETE, GC, repository deletion), never past the limit under
concurrent pushes; ``used_bytes`` always equals the sum of the counted blobs."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import delete, select

from dockyard.app.services import Services
from dockyard.auth.policy import Subject
from dockyard.auth.tables import audit_log, workspaces
from dockyard.errors import Forbidden
from dockyard.oci.digest import Digest
from dockyard.registry.errors import (
    BlobUnknown,
    ManifestBlobUnknown,
    ManifestUnknown,
    QuotaExceeded,
    SizeMismatch,
)
from dockyard.registry.quotas import recount, release
from dockyard.registry.tables import repository_blobs
from tests.support.oci import image_config, oci_manifest, random_blob
from tests.unit.registry.factories import GRACE, age, push_blob, push_manifest

ADMIN = Subject("user", None, "root", is_admin=True)


async def workspace_id(services: Services, name: str) -> int:
    async with services.db.read() as conn:
        return int(
            (await conn.execute(select(workspaces.c.id).where(workspaces.c.name == name))).scalar_one()
        )


async def used(services: Services, workspace: str) -> int:
    """The counter, checked against the rows it sums."""
    ws = await workspace_id(services, workspace)
    async with services.db.read() as conn:
        _limit, counted = await services.ledger.usage(conn, ws)
        assert counted == await recount(conn, ws)
    return counted


async def test_a_blob_counts_once_per_workspace_and_in_each_workspace(services: Services) -> None:
    layer = random_blob(3000)
    await push_blob(services, "lab/one", layer)
    await push_blob(services, "lab/two", layer)  # a second repository of the same workspace
    await push_blob(services, "lab/one", layer)  # pushed again: already counted
    await push_blob(services, "other/one", layer)
    assert await used(services, "lab") == 3000
    assert await used(services, "other") == 3000
    assert await services.blobs.mount("lab/three", "lab/one", Digest(layer.digest)) == 3000
    assert await used(services, "lab") == 3000


async def test_a_blob_over_the_quota_is_refused_before_it_is_visible(services: Services) -> None:
    config, small, big = image_config(), random_blob(2000), random_blob(50_000)
    first = oci_manifest(config, [small])
    await push_manifest(services, "lab/tool", first, "1.0")
    stored = await used(services, "lab")
    assert stored == config.size + small.size
    await services.quotas.set(ADMIN, "lab", stored + 10_000)

    with pytest.raises(QuotaExceeded) as refused:
        await push_blob(services, "lab/tool", big)
    assert (refused.value.used, refused.value.adding, refused.value.limit) == (
        stored,
        50_000,
        stored + 10_000,
    )
    assert "quota exceeded: workspace lab would use" in str(refused.value)
    with pytest.raises(BlobUnknown):
        await services.blobs.size_in("lab/tool", Digest(big.digest))
    second = oci_manifest(config, [small, big])
    with pytest.raises(ManifestBlobUnknown):
        await services.manifests.put("lab/tool", "2.0", second.body, second.media_type, actor=None)
    with pytest.raises(ManifestUnknown):
        await services.manifests.get("lab/tool", "2.0")
    assert await services.manifests.tags("lab/tool", None, None) == ["1.0"]
    assert await used(services, "lab") == stored
    # Blobs the workspace stores already still link (another repository): they cost nothing.
    await push_blob(services, "lab/copy", small)
    assert await used(services, "lab") == stored


async def test_a_limit_below_usage_is_allowed_and_refuses_new_blobs(services: Services) -> None:
    await push_blob(services, "lab/a", random_blob(4000))
    view = await services.quotas.set(ADMIN, "lab", 1000)
    assert (view.used_bytes, view.limit_bytes, view.percent) == (4000, 1000, 400.0)
    with pytest.raises(QuotaExceeded):
        await push_blob(services, "lab/a", random_blob(1))
    cleared = await services.quotas.set(ADMIN, "lab", None)
    assert (cleared.limit_bytes, cleared.own_limit_bytes, cleared.percent) == (None, None, None)
    await push_blob(services, "lab/a", random_blob(1))
    assert await used(services, "lab") == 4001


async def test_only_admins_set_quotas_and_members_see_them(services: Services) -> None:
    await push_blob(services, "lab/a", random_blob(10))
    stranger = Subject("user", 999, "stranger")
    with pytest.raises(Forbidden):
        await services.quotas.set(stranger, "lab", 5)
    with pytest.raises(Forbidden):
        await services.quotas.show(stranger, "lab")
    assert (await services.quotas.show(ADMIN, "lab")).used_bytes == 10
    await services.quotas.set(ADMIN, "lab", 5000, "10.0.0.1")
    async with services.db.read() as conn:
        audited = (
            await conn.execute(
                select(audit_log.c.actor_name, audit_log.c.target, audit_log.c.detail).where(
                    audit_log.c.action == "workspace.quota"
                )
            )
        ).all()
    assert [(a, t, json.loads(d)) for a, t, d in audited] == [("root", "lab", {"limit_bytes": 5000})]


async def test_the_last_link_gives_the_bytes_back(services: Services) -> None:
    layer = random_blob(5000)
    await push_blob(services, "lab/one", layer)
    await push_blob(services, "lab/two", layer)
    await services.blobs.unlink("lab/one", Digest(layer.digest))
    assert await used(services, "lab") == 5000  # lab/two still links it
    await services.blobs.unlink("lab/two", Digest(layer.digest))
    assert await used(services, "lab") == 0


async def test_gc_and_repository_deletion_give_the_bytes_back(services: Services) -> None:
    config, shared, own = image_config(), random_blob(1000), random_blob(7000)
    await push_manifest(services, "lab/keep", oci_manifest(config, [shared]), "1")
    await push_manifest(services, "lab/gone", oci_manifest(config, [shared, own]), "1")
    await push_blob(services, "lab/keep", random_blob(300))  # referenced by no manifest
    assert await used(services, "lab") == config.size + 1000 + 7000 + 300
    await services.deletions.delete_repository(ADMIN, "lab/gone")
    assert await used(services, "lab") == config.size + 1000 + 300  # shared and config stay
    await age(services.db, 2 * GRACE)
    report = await services.gc.run()
    assert len(report.links) == 1
    assert await used(services, "lab") == config.size + 1000


@pytest.mark.parametrize("pushes", [4])
async def test_parallel_pushes_never_pass_the_limit(services: Services, pushes: int) -> None:
    await push_blob(services, "lab/seed", random_blob(1))
    await services.quotas.set(ADMIN, "lab", 1 + 2 * 10_000 + 5_000)  # room for two of them

    async def attempt(index: int) -> bool:
        try:
            await push_blob(services, f"lab/r{index}", random_blob(10_000))
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(pushes)))
    assert sum(results) == 2
    assert await used(services, "lab") == 1 + 2 * 10_000


async def test_a_workspace_deletion_takes_its_count_with_it(services: Services) -> None:
    await push_blob(services, "lab/a", random_blob(10))
    ws = await workspace_id(services, "lab")
    await services.identity.workspaces.delete(ADMIN, "lab", force=True)
    async with services.db.read() as conn:
        assert await recount(conn, ws) == 0
        assert await services.ledger.own(conn, ws) == (None, 0)


async def test_giving_back_many_digests_goes_in_batches(services: Services) -> None:
    layer = random_blob(700)
    await push_blob(services, "lab/a", layer)
    ws = await workspace_id(services, "lab")
    async with services.db.write() as conn:
        await conn.execute(delete(repository_blobs).where(repository_blobs.c.digest == layer.digest))
        listed = [f"sha256:{i:064x}" for i in range(40_000)]
        listed.insert(35_000, layer.digest)  # past the first batches and any parameter limit
        assert await release(conn, ws, listed) == 700
    assert await used(services, "lab") == 0


async def test_adopting_a_stored_blob_charges_its_stored_size_and_refuses_another(
    services: Services,
) -> None:
    layer = random_blob(40_000)
    await push_blob(services, "lab/one", layer)
    digest = Digest(layer.digest)
    with pytest.raises(SizeMismatch, match="40000 bytes, not the 1 bytes"):
        await services.blobs.adopt("other/one", digest, 1, None)  # link only, a lying size
    with pytest.raises(BlobUnknown):
        await services.blobs.size_in("other/one", digest)
    assert await services.blobs.adopt("other/one", digest, 40_000, None) is False
    assert await used(services, "other") == 40_000
