"""The pull-through cache's blob fetches, against real upstreams on loopback (Debian's
docker-registry behind nginx, whose access log counts what was asked):

- concurrent first pulls of a blob in one server process wait on the one fetch without polling
  (no PostgreSQL connection per poll), and the fetch's lock file is gone once the blob is stored;
- an upstream's huge Retry-After reaches clients clamped to an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.functional.test_pull_through_cache import _push
from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api, TokenAuth, start_token_dockyard, unique
from tests.support.servers import RunningRegistry, postgres_database
from tests.support.upstreams import start_nginx, start_upstream_registry

pytestmark = pytest.mark.clients

LAYER_BYTES = 3 * 1024 * 1024  # sent at 1 MiB/s: the followers arrive while it is fetched
FOLLOWERS = 7


def _sessions(url: str) -> int:
    """How many connections to the test's database have ended (PostgreSQL counts them)."""

    async def read() -> int:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return int(
                await conn.fetchval(
                    "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                )
            )
        finally:
            await conn.close()

    return asyncio.run(read())


def test_concurrent_first_pulls_in_one_process_wait_on_one_fetch_without_polling(
    tmp_path: Path, db_kind: str
) -> None:
    with contextlib.ExitStack() as stack:
        registry = start_upstream_registry(tmp_path / "registry")
        stack.callback(registry.stop)
        slow = f"location / {{ proxy_pass http://{registry.host}; proxy_buffering on; limit_rate 1m; }}"
        nginx = start_nginx(tmp_path / "nginx", {"upstream": slow})
        stack.callback(nginx.stop)
        layer = os.urandom(LAYER_BYTES)
        digest = f"sha256:{hashlib.sha256(layer).hexdigest()}"
        with httpx.Client(base_url=f"http://{registry.host}", timeout=60) as http:
            _push(http, "library/slow", [b'{"architecture":"amd64","os":"linux"}', layer], "v1")
        url = stack.enter_context(postgres_database()) if db_kind == "postgres" else ""
        server = start_token_dockyard(
            db_kind, tmp_path / "dockyard", url, extra_env={"DOCKYARD_WORKERS": "1"}
        )
        stack.callback(server.stop)
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as api:
            api.create_workspace("flights")
            api.call(
                "PUT", "/workspaces/flights/cache", json={"limit_bytes": "1GiB", "revalidate_seconds": "1h"}
            )
        ref = f"flights/{nginx.host('upstream').replace(':', '_')}/library/slow"

        auth = TokenAuth(ADMIN, ADMIN_PASSWORD)
        with httpx.Client(base_url=server.url, auth=auth, timeout=60) as http:
            assert http.get(f"/v2/{ref}/manifests/v1").status_code == 200
        bearer = {"Authorization": f"Bearer {auth.token}"}  # one token for all: they arrive at once

        def pull(_: int) -> str:
            with httpx.Client(base_url=server.url, headers=bearer, timeout=120) as http:
                answer = http.get(f"/v2/{ref}/blobs/{digest}")
                assert answer.status_code == 200, answer.text[:300]
                return hashlib.sha256(answer.content).hexdigest()

        before = _sessions(server.database_url) if url else 0
        with ThreadPoolExecutor(FOLLOWERS + 1) as pool:
            assert set(pool.map(pull, range(FOLLOWERS + 1))) == {digest.split(":", 1)[1]}
        log = (nginx.base / "access.log").read_text()
        assert log.count(f"GET /v2/library/slow/blobs/{digest}") == 1
        if url:
            # Polling the lock opened a connection per follower every 0.1 s while the leader
            # streamed (~180 here); waiting on the leader in-process opens none. What remains is
            # the pool's overflow and this test's own reads (~8).
            assert _sessions(server.database_url) - before < 3 * FOLLOWERS
        locks = server.data_dir / "locks" / "uploads"
        assert not (locks.exists() and list(locks.glob("cache-*")))  # stored: no lock file left


@pytest.mark.parametrize("retry_after", ["1000000000000", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_upstream_retry_after_reaches_clients_as_an_hour(
    token_registry: RunningRegistry, tmp_path: Path, retry_after: str
) -> None:
    limited = f"location / {{ add_header Retry-After '{retry_after}' always; return 429; }}"
    nginx = start_nginx(tmp_path / "nginx", {"limited": limited})
    try:
        cache_name = unique("limited")
        with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
            api.create_workspace(cache_name)
            api.call(
                "PUT",
                f"/workspaces/{cache_name}/cache",
                json={"limit_bytes": "1GiB", "revalidate_seconds": "0"},
            )
        ref = f"{cache_name}/{nginx.host('limited').replace(':', '_')}/library/amd"
        with httpx.Client(
            base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60
        ) as http:
            answer = http.get(f"/v2/{ref}/manifests/v1")
        assert answer.status_code == 429, answer.text
        assert answer.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert answer.headers["retry-after"] == "3601"  # an hour, rounded up
        assert "try again in 3600 seconds" in answer.json()["errors"][0]["message"]
    finally:
        nginx.stop()
