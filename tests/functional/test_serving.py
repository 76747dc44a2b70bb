"""Zero-copy responses never leak into another connection.

A file response is copied by a worker thread with sendfile. When its client hangs up
midway, the server closes that socket, and the next client accepted may be given the same
descriptor number: the copy must not go on into the newcomer's connection.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.support.oci import OciClient, random_bytes, sha256
from tests.support.servers import RunningRegistry, private_dockyard


def _request(host: str, port: int, path: str, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def _read_until_idle(sock: socket.socket, idle: float) -> bytes:
    sock.settimeout(idle)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def _endpoint(server: RunningRegistry) -> tuple[str, int]:
    host, port = server.host.rsplit(":", 1)
    return host, int(port)


def test_an_abandoned_blob_download_never_reaches_the_next_connection(db_kind: str, tmp_path: Path) -> None:
    with private_dockyard(db_kind, tmp_path, {"DOCKYARD_WORKERS": "1"}) as (server, _restart):
        blob = random_bytes(64 * 1024 * 1024)
        with OciClient.connect(server.url) as client:
            client.push_blob("lab/big", blob)
        host, port = _endpoint(server)
        for _ in range(10):
            reader = _request(host, port, f"/v2/lab/big/blobs/{sha256(blob)}", rcvbuf=4096)
            reader.recv(1024)  # the download has started and is stalled on our tiny window
            time.sleep(0.05)
            reader.close()  # hang up midway
            other = _request(host, port, "/v2/")
            got = _read_until_idle(other, 0.5)
            other.close()
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), got[:200]
            assert body == b"{}", f"{len(body)} bytes after the response: {body[:60]!r}"
        with OciClient.connect(server.url) as client:
            assert client.get_blob("lab/big", sha256(blob)).content == blob
