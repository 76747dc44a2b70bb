"""Registry profiles over /api/v1 (a real server, real upstreams on loopback): keep, list,
show, check (a login whose failure carries a machine-readable ``reason`` naming the profile),
platform-wide profiles for admins only, and a private upstream refused as a public image."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.support.catalog import (
    UPSTREAM_SECRET,
    UPSTREAM_USER,
    CatalogUser,
    Upstreams,
    new_user,
    problem,
    start_upstreams,
)
from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api, unique
from tests.support.servers import RunningRegistry
from tests.support.upstreams import build_upstream_images, closed_port

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    images = build_upstream_images(tmp_path_factory.mktemp("profile-images"))
    with start_upstreams(tmp_path_factory.mktemp("profile-upstreams"), images) as found:
        yield found


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture
def user(token_registry: RunningRegistry, admin: Api) -> Iterator[CatalogUser]:
    with CatalogUser.connect(token_registry, new_user(admin, "prof")) as found:
        yield found


def test_a_profile_is_kept_listed_and_checked_with_the_reason(
    user: CatalogUser, upstreams: Upstreams
) -> None:
    host = upstreams.private.host
    base = f"/workspaces/{user.name}/registries"
    kept = user.api.call(
        "PUT",
        base,
        json={"registry": host, "kind": "distribution", "username": UPSTREAM_USER, "secret": "wrong"},
    )
    assert (kept["registry"], kept["settings"]["kind"], kept["settings"]["tls_verify"]) == (
        host,
        "distribution",
        True,
    )
    assert "wrong" not in user.http.get(base).text
    assert [p["registry"] for p in user.api.call("GET", base)] == [host]
    assert user.api.call("GET", f"{base}/{host}")["username"] == UPSTREAM_USER

    refused = user.http.post(f"{base}/{host}/check")
    detail = problem(refused, 424)
    body = refused.json()
    assert body["reason"] == "unauthorized"
    assert body["profile"].startswith(f"{host} (workspace ")
    assert f"check the registry profile {host} (workspace " in detail

    user.api.call("PUT", base, json={"registry": host, "username": UPSTREAM_USER, "secret": UPSTREAM_SECRET})
    checked = user.api.call("POST", f"{base}/{host}/check")
    assert (checked["ok"], checked["scheme"]) == (True, "http")

    stopped = f"127.0.0.1:{closed_port()}"
    user.api.call("PUT", base, json={"registry": stopped})
    down = user.http.post(f"{base}/{stopped}/check")
    problem(down, 424)
    assert (down.json()["reason"], down.json()["detail_kind"]) == ("unreachable", "connect")


def test_plain_http_and_platform_profiles_need_an_admin(user: CatalogUser, admin: Api) -> None:
    plain = user.http.put(
        f"/workspaces/{user.name}/registries", json={"registry": "r.example.org", "plain_http": True}
    )
    assert "plain HTTP" in problem(plain, 403)
    assert "administrator" in problem(user.http.put("/registries", json={"registry": "r.example.org"}), 403)
    admin.call("PUT", "/registries", json={"registry": "mirror.example.org", "kind": "quay"})
    assert "mirror.example.org" in [p["registry"] for p in user.api.call("GET", "/registries")]
    assert problem(user.http.delete("/registries/mirror.example.org"), 403)
    admin.call("DELETE", "/registries/mirror.example.org", expect=204)
    bad_ca = user.http.put(
        f"/workspaces/{user.name}/registries", json={"registry": "x.org", "ca_bundle": "junk"}
    )
    assert "not PEM" in problem(bad_ca, 422)


def test_a_private_upstream_backs_only_a_private_image(user: CatalogUser, upstreams: Upstreams) -> None:
    host = upstreams.private.host
    user.api.call(
        "PUT",
        f"/workspaces/{user.name}/registries",
        json={"registry": host, "username": UPSTREAM_USER, "secret": UPSTREAM_SECRET},
    )
    refused = user.http.post(
        "/images",
        json={"workspace": user.name, "reference": f"{host}/team/secret:v1", "visibility": "public"},
    )
    assert "cannot be public: its upstream" in problem(refused, 409)
    assert refused.json()["reason"] == "private_upstream"
    assert user.http.get(f"/images/{user.name}/secret").status_code == 404  # nothing left behind

    created = user.register(user.name, f"{host}/team/secret:v1", visibility="private")
    checked = user.verify(created["image"], "v1")
    assert checked["status"] == "reachable", checked["status_reason"]
    opened = user.http.put(f"/images/{created['image']}/visibility", json={"visibility": "public"})
    assert "cannot be public" in problem(opened, 409)
    assert user.image(created["image"])["visibility"] == "private"

    # An upstream that serves anonymous pulls may back a public image.
    public = user.register(user.name, upstreams.ref("library/amd:v1"), visibility="public")
    assert public["status"] == "unverified"


async def _hold_a_platform_profile_while_one_is_saved(admin: Api, url: str, host: str) -> httpx.Response:
    """Insert a platform-wide profile for ``host`` in an open transaction, save one over the API
    (its delete sees nothing to replace, its insert waits on ours), then commit ours: the API's
    save collides with it."""
    mine, watcher = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        transaction = mine.transaction()
        await transaction.start()
        await mine.execute(
            "INSERT INTO upstream_credentials (workspace_id, registry, username, secret, created_at, "
            "created_by, kind, tls_verify) VALUES (NULL, $1, '', '', 0, 'race', 'distribution', true)",
            host,
        )
        saving = asyncio.create_task(
            asyncio.to_thread(admin.http.put, "/registries", json={"registry": host, "kind": "quay"})
        )
        deadline = time.monotonic() + 30
        waiting = 0
        while not saving.done() and not waiting:  # until the save waits on our row's index entry
            assert time.monotonic() < deadline, "the save neither waited nor finished"
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            await asyncio.sleep(0.05)  # polling what PostgreSQL reports, bounded by the deadline
        assert waiting, f"the save did not wait for ours: {(await saving).status_code}"
        await transaction.commit()
        return await saving
    finally:
        await mine.close()
        await watcher.close()


async def test_a_platform_profile_saved_concurrently_twice_is_refused_409_not_kept_twice(
    token_registry: RunningRegistry, admin: Api
) -> None:
    host = f"{unique('race')}.example.org"
    if token_registry.kind == "sqlite":
        # SQLite runs one write at a time: of saves sent together, the later replaces the
        # earlier, and one profile is kept.
        async with httpx.AsyncClient(
            base_url=f"{token_registry.url}/api/v1", auth=(ADMIN, ADMIN_PASSWORD), timeout=60
        ) as client:
            saves = [
                client.put("/registries", json={"registry": host, "username": f"u{i}", "secret": "s"})
                for i in range(4)
            ]
            answers = await asyncio.gather(*saves)
        assert sorted(a.status_code for a in answers) == [200] * 4, [a.text for a in answers]
        kept = [p for p in admin.call("GET", "/registries") if p["registry"] == host]
        try:
            assert len(kept) == 1
            assert kept[0]["username"] in {"u0", "u1", "u2", "u3"}
        finally:
            admin.http.delete(f"/registries/{host}")
        return
    url = token_registry.database_url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        refused = await _hold_a_platform_profile_while_one_is_saved(admin, url, host)
        assert "saved at the same moment" in problem(refused, 409)
        kept = [p for p in admin.call("GET", "/registries") if p["registry"] == host]
        assert [p["created_by"] for p in kept] == ["race"]  # one, the first saved
    finally:
        admin.http.delete(f"/registries/{host}")
