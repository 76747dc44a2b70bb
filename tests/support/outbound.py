"""Test support for the outbound policy: loopback listeners that tell whether the server tried
to connect to a destination it should have refused, and small HTTP servers (a redirect, a
folder served as a "dumb" git repository).

Every address here is on loopback. Tests that name a non-loopback destination (10.0.0.1,
169.254.169.254) rely on the refusal happening before any connection; :func:`proxy_env`
points a server's proxy variables at a canary, so a server that would connect after all
(one that still honoured them) sends the connection there, never off the machine.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


class Canary:
    """A loopback port that counts the connections made to it and closes each at once."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._accepted += 1
            connection.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def canary() -> Iterator[Canary]:
    found = Canary()
    try:
        yield found
    finally:
        found.close()


def proxy_env(target: Canary) -> dict[str, str]:
    """Proxy variables sending every proxied request to ``target`` (see the module docstring)."""
    url = f"http://{target.host}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    return {
        **{name: url for name in names},
        **{name.lower(): url for name in names},
        "NO_PROXY": "",
        "no_proxy": "",
    }


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Redirect(_Quiet):
    location = ""

    def do_GET(self) -> None:
        self.send_response(307)
        self.send_header("Location", self.location + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def http_server(folder: Path | None = None, *, redirect_to: str | None = None) -> Iterator[str]:
    """An HTTP server on loopback serving ``folder``, or answering every GET with a 307 to
    ``redirect_to`` + the path; yields its ``127.0.0.1:port``."""
    handler: Callable[..., http.server.BaseHTTPRequestHandler]
    if redirect_to is not None:
        handler = type("Redirect", (_Redirect,), {"location": redirect_to})
    else:
        assert folder is not None
        handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
