"""Trivial loopback HTTP servers that show what the clients and load tools can do here.

``python -m bench.trivial_server sendfile FILE PORT``: answers every request with FILE,
sent with sendfile(2) from a thread per connection (the GET client's ceiling).

``python -m bench.trivial_server static PORT``: answers every request with a fixed ~500-byte
manifest-like response from an event loop (uvloop when available): the load tools' ceiling.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from typing import cast

HEAD_END = b"\r\n\r\n"


def _serve_file(conn: socket.socket, path: str) -> None:
    size = os.path.getsize(path)
    header = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size
    fd = os.open(path, os.O_RDONLY)
    try:
        with conn:
            pending = b""
            while True:
                while HEAD_END not in pending:
                    data = conn.recv(65536)
                    if not data:
                        return
                    pending += data
                request, pending = pending.split(HEAD_END, 1)
                conn.sendall(header)
                if request.startswith(b"HEAD"):
                    continue
                offset = 0
                while offset < size:
                    sent = os.sendfile(conn.fileno(), fd, offset, size - offset)
                    if sent == 0:
                        return
                    offset += sent
    except OSError:
        return
    finally:
        os.close(fd)


def sendfile_server(path: str, port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=256)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_file, args=(conn, path), daemon=True).start()


BODY = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"' + b" " * 420 + b"}"
HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    b"Docker-Content-Digest: sha256:" + b"0" * 64 + b"\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
)


class _Static(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        out: list[bytes] = []
        while (end := self.pending.find(HEAD_END)) >= 0:
            request, self.pending = self.pending[:end], self.pending[end + 4 :]
            out.append(HEADERS if request.startswith(b"HEAD") else HEADERS + BODY)
        if out:
            self.transport.write(b"".join(out))


async def _static_main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Static, "127.0.0.1", port, backlog=1024)
    await server.serve_forever()


def static_server(port: int) -> None:
    try:
        import uvloop  # a Dockyard dependency; the fastest loop to hand

        uvloop.run(_static_main(port))
    except ImportError:
        asyncio.run(_static_main(port))


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "sendfile":
        sendfile_server(argv[1], int(argv[2]))
    elif len(argv) == 2 and argv[0] == "static":
        static_server(int(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
