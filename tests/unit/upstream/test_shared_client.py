"""The cache's upstream sessions share a client: consecutive blobs of a pull reuse one connection
(no TCP or TLS handshake per blob), and nothing one session was sent comes back in another (the
shared client keeps no cookies)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dockyard.outbound import OutboundPolicy
from dockyard.upstream.cache import CacheTarget, Upstreams
from dockyard.upstream.reach import Connection, Reach


@dataclass
class Seen:
    host: str = ""
    connections: int = 0
    cookies: list[str] = field(default_factory=list)


@pytest.fixture
def upstream() -> Iterator[Seen]:
    """A loopback HTTP/1.1 server that keeps connections alive, counts them, answers every GET
    with two bytes and a cookie, and notes any cookie it is sent."""
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            seen.connections += 1
            super().handle()

        def do_GET(self) -> None:
            if self.headers.get("cookie"):
                seen.cookies.append(self.headers["cookie"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Set-Cookie", "session=of-another-tenant; Path=/")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.host = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10.0)


class Anonymous(Reach):
    """Every host over plain HTTP without credentials, as a loopback upstream without a profile."""

    def __init__(self) -> None:
        pass

    async def connection_for(self, workspace_id: int | None, host: str) -> Connection:
        return Connection(host, "http", None)


async def test_sessions_reuse_one_connection_and_keep_no_cookies(upstream: Seen) -> None:
    upstreams = Upstreams(Anonymous(), OutboundPolicy([upstream.host]))
    target = CacheTarget(workspace_id=1, revalidate_seconds=600, host=upstream.host, path="library/x")
    try:
        for layer in range(3):
            async with upstreams.connect(target) as session:
                fetched = await session.get(f"/blobs/sha256:{layer:064x}", what="a blob", limit=16)
                assert (fetched.status, fetched.body) == (200, b"ok")
    finally:
        await upstreams.close()
    assert upstream.connections == 1
    assert upstream.cookies == []
