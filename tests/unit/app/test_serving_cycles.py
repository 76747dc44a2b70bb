"""Serving a request leaves nothing for the garbage collector.

Objects caught in reference cycles are freed only by the cyclic collector, whose full
collections stop every request of the process for tens of milliseconds. The server's own
protocol (:class:`~dockyard.app.serving.ZeroCopyHttpToolsProtocol`), the access log and the
registry's router must free everything a request made by reference counting alone.
(Timings are the bench's business: ``python -m bench.token_auth``.)
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from dockyard.app.asgi import create_app
from dockyard.app.serving import ZeroCopyHttpToolsProtocol
from dockyard.settings import Settings
from tests.unit.conftest import MetadataDatabases


@pytest.fixture
async def server_port(tmp_path: Path, metadata_databases: MetadataDatabases) -> AsyncIterator[int]:
    """A dev-mode Dockyard served by uvicorn with Dockyard's protocol, in this event loop."""
    url = await metadata_databases.migrated_sqlite(tmp_path / "metadata.db")
    # The background loops (webhook deliveries each second, job recovery, retention, pull-time
    # flushes) make their own short-lived objects: they wait past the measured requests, which
    # on a loaded machine can take seconds.
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        auth_mode="dev",
        gc_interval_seconds=0,
        retention_check_seconds=0,
        webhook_poll_seconds=300,
        job_recover_seconds=3600,
        pull_flush_seconds=3600,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=ZeroCopyHttpToolsProtocol, lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server stopped at start-up"
        await asyncio.sleep(0.01)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        metadata_databases.discard(url)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
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
