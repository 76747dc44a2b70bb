"""Serving a request leaves nothing for the garbage collector.

Objects caught in reference cycles are freed only by the cyclic collector, whose full
collections stop every request of the process for tens of milliseconds. The server's own
protocol (:class:`~dockyard.app.serving.ZeroCopyHttpToolsProtocol`), the access log and the
registry's router must free everything a request made by reference counting alone.
(Timings are the bench's business: ``python -m bench.token_auth``.)
"""

from __future__ import annotations

import asyncio
import base64
import gc
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dockyard.app.asgi import create_app
from dockyard.app.serving import ZeroCopyHttpToolsProtocol
from dockyard.settings import Settings
from tests.support.oci import OCI_MANIFEST, OciClient, oci_manifest
from tests.unit.conftest import MetadataDatabases

ADMIN = ("admin", "cycles-admin-password")
# The background loops (webhook deliveries each second, job recovery, retention, pull-time
# flushes) make their own short-lived objects: they wait past the measured requests, which on
# a loaded machine can take seconds.
QUIET: dict[str, Any] = {
    "gc_interval_seconds": 0,
    "retention_check_seconds": 0,
    "webhook_poll_seconds": 300,
    "job_recover_seconds": 3600,
    "pull_flush_seconds": 3600,
}
BASIC = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


async def _serve(settings: Settings) -> AsyncIterator[int]:
    """``settings``' Dockyard served by uvicorn with Dockyard's protocol, in this event loop."""
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=ZeroCopyHttpToolsProtocol, lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server stopped at start-up"
        await asyncio.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def server_port(tmp_path: Path, metadata_databases: MetadataDatabases) -> AsyncIterator[int]:
    """A dev-mode Dockyard on SQLite."""
    url = await metadata_databases.migrated_sqlite(tmp_path / "metadata.db")
    settings = Settings(data_dir=tmp_path, database_url=url, auth_mode="dev", **QUIET)
    try:
        async for port in _serve(settings):
            yield port
    finally:
        metadata_databases.discard(url)


@pytest.fixture
async def token_server_port(tmp_path: Path, database_url: str) -> AsyncIterator[int]:
    """A token-mode Dockyard (first admin ``ADMIN``) on the test's database."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        auth_mode="token",
        admin_username=ADMIN[0],
        admin_password=ADMIN[1],
        **QUIET,
    )
    async for port in _serve(settings):
        yield port


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    method: str = "GET",
    headers: str = "",
) -> int:
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if method != "HEAD":
        await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def test_requests_leave_no_reference_cycles(server_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    paths = ["/v2/", "/v2/lab/app/manifests/latest", "/healthz"]
    for path in paths * 5:  # first requests build caches that live on
        await _exchange(reader, writer, path)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        statuses = Counter([await _exchange(reader, writer, path) for path in paths * 50])
        gc.collect()
        left = Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        writer.close()
    assert statuses == {200: 100, 404: 50}
    # A few objects of the database layer's one-off work may turn up; a request's own would
    # come once per request (before the fix: ~18 per request, around uvicorn's cycle).
    assert left.total() < 50, f"objects freed only by the garbage collector: {left.most_common(8)}"


def _push_private_image(port: int) -> str:
    """As the admin: a workspace ``cyc`` (private) holding ``cyc/app:v1``; a pull token for it."""
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": BASIC}) as api:
        assert api.post("/api/v1/workspaces", json={"name": "cyc"}).status_code == 201
        challenge = api.head("/v2/cyc/app/manifests/v1", headers={"Authorization": ""})
        service = challenge.headers["WWW-Authenticate"].split('service="', 1)[1].split('"', 1)[0]

        def token(actions: str) -> str:
            params = {"service": service, "scope": f"repository:cyc/app:{actions}"}
            answer = api.get("/auth/token", params=params)
            assert answer.status_code == 200, answer.text
            return str(answer.json()["token"])

        bearer = {"Authorization": f"Bearer {token('pull,push')}"}
        with httpx.Client(base_url=base, timeout=60, headers=bearer) as http:
            oci = OciClient(http)
            manifest = oci_manifest()
            oci.push_blobs("cyc/app", manifest.blobs)
            put = http.put(
                "/v2/cyc/app/manifests/v1", content=manifest.body, headers={"Content-Type": OCI_MANIFEST}
            )
            assert put.status_code == 201, put.text
        return token("pull")


async def test_token_auth_manifest_requests_leave_no_reference_cycles(token_server_port: int) -> None:
    """What ``docker pull`` asks most: HEAD and GET of a private manifest with a Bearer token,
    the anonymous challenge (401) and a missing tag (404)."""
    pull = await asyncio.to_thread(_push_private_image, token_server_port)
    auth = f"Authorization: Bearer {pull}\r\nAccept: {OCI_MANIFEST}\r\n"
    asks = [
        ("HEAD", "/v2/cyc/app/manifests/v1", auth),
        ("GET", "/v2/cyc/app/manifests/v1", auth),
        ("HEAD", "/v2/cyc/app/manifests/v1", ""),
        ("GET", "/v2/cyc/app/manifests/missing", auth),
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", token_server_port)
    try:
        for method, path, headers in asks * 5:  # first requests build caches that live on
            await _exchange(reader, writer, path, method, headers)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            statuses = Counter([await _exchange(reader, writer, p, m, h) for m, p, h in asks * 50])
            gc.collect()
            left = Counter(type(o).__qualname__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        writer.close()
    assert statuses == {200: 100, 401: 50, 404: 50}
    # A request's own cycle would leave at least one object per request (200 here).
    assert left.total() < 100, f"objects freed only by the garbage collector: {left.most_common(8)}"
