"""A thin OCI distribution client on http.client that sends blob bodies with sendfile(2).

Bodies come straight from the page cache of a local file (zero copy), so the client costs
little CPU next to the server it measures.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Self
from urllib.parse import quote, urljoin, urlsplit

OCTET = "application/octet-stream"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class RegistryError(RuntimeError):
    pass


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


def _sendfile_all(sock: socket.socket, fd: int, offset: int, count: int, timeout: float) -> None:
    """Blocking sendfile(2) of the whole range: one syscall per socket-buffer drain, no copies.

    SO_SNDTIMEO bounds each stall (the kernel then returns EAGAIN or a short count)."""
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(timeout), 0))
    try:
        sent = 0
        while sent < count:
            n = os.sendfile(sock.fileno(), fd, offset + sent, count - sent)
            if n == 0:
                raise OSError(f"sendfile stopped after {sent} of {count} bytes")
            sent += n
    finally:
        sock.settimeout(timeout)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """One keep-alive connection to a registry on 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 300.0, authorization: str = "") -> None:
        self.port = port
        self.authorization_header = {"Authorization": authorization} if authorization else {}
        self.base = f"http://127.0.0.1:{port}"
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        file: tuple[int, int, int] | None = None,
    ) -> Response:
        """Send one request; ``file`` is (fd, offset, count) sent with sendfile after the headers."""
        length = file[2] if file else len(body)
        self.conn.putrequest(method, path, skip_accept_encoding=True)
        self.conn.putheader("Content-Length", str(length))
        for name, value in {**self.authorization_header, **headers}.items():
            self.conn.putheader(name, value)
        self.conn.endheaders(body if body else None)
        sock = self.conn.sock
        if file is not None:
            if sock is None:
                raise RegistryError("connection has no socket")
            try:
                _sendfile_all(sock, *file, self.timeout)
            except OSError as exc:  # the server gave up early: its answer may say why
                try:
                    resp = self._read_response(method)
                except (OSError, http.client.HTTPException):
                    raise RegistryError(f"{method} {path}: {exc}") from exc
                raise RegistryError(
                    f"{method} {path}: {exc}; server said {resp.status} {resp.body[:300]!r}"
                ) from exc
        return self._read_response(method)

    def _read_response(self, method: str) -> Response:
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.will_close:
            self.conn.close()
        return Response(resp.status, resp.headers, body)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        return self._send(method, path, headers or {}, body)

    def _location(self, resp: Response, what: str) -> str:
        loc = resp.header("Location")
        if not loc:
            raise RegistryError(f"{what}: no Location in {resp.status} answer")
        parts = urlsplit(urljoin(self.base + "/", loc))
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return f"{location}{'&' if '?' in location else '?'}digest={quote(digest, safe='')}"

    def _expect(self, resp: Response, status: int, what: str) -> Response:
        if resp.status != status:
            raise RegistryError(f"{what}: expected {status}, got {resp.status}: {resp.body[:300]!r}")
        return resp

    # -- OCI operations ----------------------------------------------------------------------

    def start_upload(self, repo: str) -> str:
        resp = self._expect(self.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, "POST upload")
        return self._location(resp, "POST upload")

    def push_bytes(self, repo: str, data: bytes) -> str:
        digest = sha256_digest(data)
        location = self.start_upload(repo)
        resp = self._send("PUT", self._with_digest(location, digest), {"Content-Type": OCTET}, data)
        self._expect(resp, 201, "PUT small blob")
        return digest

    def upload_monolithic(self, repo: str, fd: int, size: int, digest: str, offset: int = 0) -> float:
        """POST, then PUT ?digest= with the whole body (``size`` bytes of ``fd`` from ``offset``).
        Returns seconds from POST to 201."""
        start = time.perf_counter()
        location = self.start_upload(repo)
        resp = self._send(
            "PUT", self._with_digest(location, digest), {"Content-Type": OCTET}, file=(fd, offset, size)
        )
        self._expect(resp, 201, "monolithic PUT")
        elapsed = time.perf_counter() - start
        self._check_digest(resp, digest)
        return elapsed

    def upload_chunked(self, repo: str, fd: int, size: int, digest: str, chunk: int) -> float:
        """POST, PATCH ``chunk`` bytes at a time with Content-Range, then PUT ?digest=."""
        start = time.perf_counter()
        location = self.start_upload(repo)
        offset = 0
        while offset < size:
            count = min(chunk, size - offset)
            headers = {"Content-Type": OCTET, "Content-Range": f"{offset}-{offset + count - 1}"}
            resp = self._expect(
                self._send("PATCH", location, headers, file=(fd, offset, count)), 202, "PATCH"
            )
            location = self._location(resp, "PATCH")
            offset += count
        resp = self._expect(self._send("PUT", self._with_digest(location, digest), {}), 201, "closing PUT")
        elapsed = time.perf_counter() - start
        self._check_digest(resp, digest)
        return elapsed

    def _check_digest(self, resp: Response, digest: str) -> None:
        got = resp.header("Docker-Content-Digest")
        if got and got != digest:
            raise RegistryError(f"server stored {got}, expected {digest}")

    def blob_size(self, repo: str, digest: str) -> int:
        resp = self._expect(self.request("HEAD", f"/v2/{repo}/blobs/{digest}"), 200, "HEAD blob")
        return int(resp.header("Content-Length") or -1)

    def delete_blob(self, repo: str, digest: str) -> int:
        return self.request("DELETE", f"/v2/{repo}/blobs/{digest}").status

    def put_manifest(self, repo: str, tag: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{tag}", {"Content-Type": media_type}, manifest)
        self._expect(resp, 201, "PUT manifest")
        return sha256_digest(manifest)


def small_image(client: RegistryClient, repo: str, tag: str) -> tuple[str, int]:
    """Push a small OCI image (one config, one layer) and tag it. Returns (digest, size)."""
    layer = os.urandom(4096)
    layer_digest = client.push_bytes(repo, layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = client.push_bytes(repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        },
        indent=3,
    ).encode()
    return client.put_manifest(repo, tag, manifest), len(manifest)
