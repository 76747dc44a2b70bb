"""Dockyard's ``/api/v1`` as the admin of a token-mode server: workspaces, archive uploads
(chunks sent with ``sendfile(2)`` from the archive file, as the blob PUTs are), versions.

The archive upload follows ``src/dockyard/api/v1/archives.py`` and the CLI
(``dockyard image upload``): ``POST /archives``, ``PATCH`` chunks with ``Content-Range``,
``PUT`` to complete (here ``?wait=true``: the answer comes when the import has ended), then
``POST /archives/{id}/create-version``. Every request carries HTTP Basic credentials; the
server caches a successful check, so only the first one pays for the password hash.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bench.archive_data import Archive
from bench.registry_client import OCTET, RegistryClient, RegistryError

API = "/api/v1"


@dataclass(frozen=True)
class ImportTiming:
    """Client-side seconds of one archive import, and the session's final status."""

    upload: float  # POST /archives to the last PATCH's answer: each chunk is imported as it
    # arrives (tar parsed, blobs hashed and staged), so this is the import of the blobs
    finish: float  # PUT ?wait=true: the import resolves the images (manifests, configs, checks)
    version: float  # POST create-version (staged blobs adopted, manifests put)
    status: dict[str, Any]  # GET /archives/{id} once done (bytes_written, bytes_deduplicated, ...)

    @property
    def total(self) -> float:
        return self.upload + self.finish + self.version


class ApiClient(RegistryClient):
    """One keep-alive connection to a token-mode Dockyard's /api/v1, as ``credentials``."""

    def __init__(self, port: int, credentials: tuple[str, str], timeout: float = 300.0) -> None:
        super().__init__(port, timeout)
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        self.authorization = f"Basic {token}"

    def call(self, method: str, path: str, body: object = None, expect: tuple[int, ...] = (200,)) -> Any:
        headers = {"Authorization": self.authorization}
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        resp = self._send(method, API + path, headers, data)
        if resp.status not in expect:
            raise RegistryError(f"{method} {API}{path}: {resp.status} {resp.body[:500]!r}")
        return json.loads(resp.body) if resp.body else None

    def create_workspace(self, name: str) -> None:
        self.call("POST", "/workspaces", {"name": name}, expect=(201,))

    def create_token(self, name: str) -> str:
        """A personal access token with the pull scope (for downloads with curl)."""
        created = self.call("POST", "/user/tokens", {"name": name, "scopes": ["pull", "api"]}, (201,))
        return str(created["secret"])

    def upload(self, workspace: str, archive: Archive, fd: int, chunk: int) -> str:
        """Start a session and send the whole archive in ``chunk``-byte PATCHes; its id."""
        started = self.call("POST", "/archives", {"workspace": workspace, "size": archive.size}, (201,))
        archive_id = str(started["id"])
        offset = 0
        while offset < archive.size:
            count = min(chunk, archive.size - offset)
            headers = {
                "Authorization": self.authorization,
                "Content-Type": OCTET,
                "Content-Range": f"bytes {offset}-{offset + count - 1}/{archive.size}",
            }
            resp = self._send("PATCH", f"{API}/archives/{archive_id}", headers, file=(fd, offset, count))
            if resp.status != 202:
                raise RegistryError(f"PATCH archive at {offset}: {resp.status} {resp.body[:500]!r}")
            offset = int(json.loads(resp.body)["offset"])
        return archive_id

    def import_archive(
        self, workspace: str, archive: Archive, fd: int, chunk: int, name: str, version: str
    ) -> ImportTiming:
        """Upload (imported as it arrives), finish and create ``workspace/name:version``, each
        step timed."""
        start = time.perf_counter()
        archive_id = self.upload(workspace, archive, fd, chunk)
        uploaded = time.perf_counter()
        done = self.call("PUT", f"/archives/{archive_id}?wait=true")
        finished = time.perf_counter()
        if done["state"] != "done":
            raise RegistryError(f"archive import ended {done['state']}: {done.get('reason')}")
        self.call(
            "POST", f"/archives/{archive_id}/create-version", {"name": name, "version": version}, (201,)
        )
        created = time.perf_counter()
        status = self.call("GET", f"/archives/{archive_id}")
        self.call("DELETE", f"/archives/{archive_id}", expect=(204,))
        return ImportTiming(uploaded - start, finished - uploaded, created - finished, status)

    def wait_available(self, image: str, version: str, timeout: float) -> float:
        """Poll the version until the catalog has inspected it; seconds waited."""
        start = time.perf_counter()
        path = f"/images/{quote(image)}/versions/{quote(version)}"
        while True:
            status = self.call("GET", path)["status"]
            if status == "available":
                return time.perf_counter() - start
            if status == "failed" or time.perf_counter() - start > timeout:
                raise RegistryError(f"{image}:{version} is {status} after {time.perf_counter() - start:.0f}s")
            time.sleep(0.05)

    def wait_packages(self, image: str, version: str, timeout: float) -> tuple[dict[str, Any], float]:
        """Poll the version's packages until they were read (after the inspection); the scan's
        state and how long it took on the server (read at the end of the scan, minus the
        version's inspection end: the scan starts once the version is available)."""
        start = time.perf_counter()
        path = f"/images/{quote(image)}/versions/{quote(version)}"
        while True:
            scan = self.call("GET", f"{path}/packages?limit=1")["scan"]
            if scan is not None:
                checked_at = float(self.call("GET", path)["checked_at"])
                return scan, float(scan["scanned_at"]) - checked_at
            if time.perf_counter() - start > timeout:
                raise RegistryError(f"the packages of {image}:{version} were not read after {timeout:.0f}s")
            time.sleep(0.05)

    def archive_size(self, image: str, version: str, fmt: str) -> int:
        """HEAD of the version's archive download: its Content-Length."""
        resp = self._send(
            "HEAD",
            f"{API}{archive_path(image, version, fmt)}",
            {"Authorization": self.authorization},
        )
        if resp.status != 200:
            raise RegistryError(f"HEAD archive of {image}:{version}: {resp.status}")
        return int(resp.header("Content-Length"))


def archive_path(image: str, version: str, fmt: str) -> str:
    return f"/images/{quote(image)}/versions/{quote(version)}/archive?format={fmt}"
