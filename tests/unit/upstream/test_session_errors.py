"""An upstream that fails while sending an error body is unreachable, never a crash (a 500 on /v2)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from dockyard.upstream.results import UpstreamFailure
from dockyard.upstream.session import UpstreamSession


@pytest.fixture
def truncating_server() -> Iterator[str]:
    """A raw-socket HTTP server on loopback: every request gets a 404 that promises 100 bytes
    and closes after 10."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # accept() wakes up to see ``stop``
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by the fixture
                return
            with conn:
                conn.settimeout(10.0)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    received += chunk
                conn.sendall(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
                    + b"0123456789"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=10.0)


async def test_an_error_body_cut_short_is_an_unreachable_upstream(truncating_server: str) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        session = UpstreamSession(
            client,
            scheme="http",
            host=truncating_server,
            api_host=truncating_server,
            repository="library/alpine",
            credentials=None,
        )
        with pytest.raises(UpstreamFailure) as raised:
            async with session.stream("/blobs/sha256:" + "0" * 64, what="the blob", not_found="gone"):
                pass
    assert raised.value.failure.kind == "unreachable", raised.value.failure
