"""A full disk, through a real ``dockyard serve`` whose data folder (or blob storage alone)
is a small tmpfs that a filler file fills to the last byte.

What must hold: pulls and logins keep working; every write that needs the full volume gets
a clear answer (507 Insufficient Storage, naming the volume) in the format of its door; no
server process dies (memory-mapped files must never fault); ``dockyard gc`` frees space on
the full disk; and once space is back, pushes work again without a restart.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.identity import ADMIN, ADMIN_PASSWORD, oci_as, start_token_dockyard
from tests.support.oci import (
    OCTET_STREAM,
    Manifest,
    OciClient,
    image_config,
    location_of,
    oci_manifest,
    random_blob,
    sha256,
    with_query,
)
from tests.support.servers import (
    RunningRegistry,
    alive,
    dockyard_cli,
    postgres_database,
    server_workers,
    start_dockyard,
)
from tests.support.volumes import MiB, fill, free_bytes, tmpfs

BLOB_STORAGE = "blob storage"
METADATA_DATABASE = "metadata database"


def _image(layer_size: int = 4096) -> Manifest:
    return oci_manifest(image_config(), [random_blob(layer_size)])


def _push_blob(client: OciClient, repo: str, data: bytes) -> httpx.Response:
    """A monolithic blob push; the first answer that is not a success."""
    started = client.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    if started.status_code != 202:
        return started
    return client.http.put(
        with_query(location_of(started), digest=sha256(data)),
        content=data,
        headers={"Content-Type": OCTET_STREAM},
    )


def _assert_insufficient_storage(response: httpx.Response, volume: str) -> None:
    assert response.status_code == 507, f"{response.status_code} {response.text[:500]}"
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert error["code"] == "UNAVAILABLE", error
    assert f"insufficient storage: the {volume} volume is full" in error["message"], error


def _assert_pulls(server: RunningRegistry, repo: str, manifest: Manifest) -> None:
    # Fresh clients (new connections, new logins) a few times, to meet every worker.
    for _ in range(6):
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as client:
            got = client.get_manifest(repo, "v1")
            assert got.status_code == 200, got.text
            assert got.content == manifest.body
            assert client.head_manifest(repo, "v1").status_code == 200
            for blob in manifest.blobs:
                pulled = client.get_blob(repo, blob.digest)
                assert pulled.status_code == 200, pulled.text
                assert pulled.content == blob.data


def _assert_logins(server: RunningRegistry) -> None:
    token = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "offline_token": "true", "client_id": "test"},
        auth=(ADMIN, ADMIN_PASSWORD),
    )
    assert token.status_code == 200, token.text
    assert token.json()["token"]
    grant = httpx.post(
        f"{server.url}/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": ADMIN_PASSWORD, "service": "dockyard"},
    )
    assert grant.status_code == 200, grant.text
    wrong = httpx.get(f"{server.url}/auth/token", auth=(ADMIN, "not-the-password"))
    assert wrong.status_code == 401, wrong.text


def _assert_no_process_died(server: RunningRegistry, workers: list[int]) -> None:
    assert server.process.poll() is None, server.log()[-3000:]
    assert server_workers(server) == workers, server.log()[-3000:]
    assert all(alive(pid) for pid in workers)
    log = server.log()
    for sign in ("died", "SIGBUS", "Traceback"):
        assert sign not in log, log[-5000:]


@contextlib.contextmanager
def _token_server(db_kind: str, base: Path) -> Iterator[RunningRegistry]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if db_kind == "postgres" else ""
        env = {"DOCKYARD_WORKERS": "2", "DOCKYARD_GC_GRACE_SECONDS": "0"}
        server = start_token_dockyard(db_kind, base, url, env)
        stack.callback(server.stop)
        yield server


def test_a_full_data_folder_serves_reads_refuses_writes_clearly_and_recovers(
    db_kind: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with tmpfs(data, 64 * MiB), _token_server(db_kind, tmp_path) as server:
        workers = server_workers(server)
        assert len(workers) == 2
        kept, junk = _image(), _image(12 * MiB)
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as client:
            client.push("admin/kept", kept, "v1")
            client.push("admin/junk", junk, "v1")
            assert client.delete_manifest("admin/junk", "v1").status_code == 202  # garbage now
        filler = fill(data)

        _assert_pulls(server, "admin/kept", kept)
        _assert_logins(server)
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as client:
            # SQLite, in the data folder, refuses the upload session; PostgreSQL takes it,
            # and the bytes find the blob storage (in the data folder) full.
            volume = METADATA_DATABASE if db_kind == "sqlite" else BLOB_STORAGE
            _assert_insufficient_storage(_push_blob(client, "admin/new", b"x" * 300_000), volume)
            retag = client.put_manifest("admin/kept", "v2", kept)
            if db_kind == "sqlite":
                _assert_insufficient_storage(retag, METADATA_DATABASE)
            else:
                assert retag.status_code == 201, retag.text  # the database is not on the full disk
        with httpx.Client(base_url=f"{server.url}/api/v1", auth=(ADMIN, ADMIN_PASSWORD)) as api:
            created = api.post("/workspaces", json={"name": f"lab-{uuid.uuid4().hex[:8]}"})
        if db_kind == "sqlite":
            assert created.status_code == 507, created.text
            assert created.headers["content-type"] == "application/problem+json"
            problem = created.json()
            assert (problem["status"], problem["volume"]) == (507, METADATA_DATABASE), problem
            assert "insufficient storage" in problem["detail"]
        else:
            assert created.status_code == 201, created.text
        _assert_no_process_died(server, workers)

        collected = dockyard_cli(server, "gc")
        assert collected.returncode == 0, collected.stderr[-3000:]
        report = json.loads(collected.stdout)
        assert set(report["blobs"]) >= {blob.digest for blob in junk.blobs}, report
        assert report["bytes_freed"] >= 12 * MiB, report
        assert free_bytes(data) >= 8 * MiB  # freed on the full disk (less what the reserve took back)

        filler.unlink()
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as client:
            again = _image()
            client.push("admin/kept", again, "v3")  # asserts 201s: no restart needed
            assert client.get_manifest("admin/kept", "v3").content == again.body
        _assert_no_process_died(server, workers)


def test_a_full_blob_storage_refuses_pushes_clearly_and_recovers(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    with tmpfs(blobs, 16 * MiB):
        env = {"DOCKYARD_WORKERS": "2", "DOCKYARD_STORAGE_ROOT": str(blobs)}
        server = start_dockyard("sqlite", tmp_path, extra_env=env)
        try:
            workers = server_workers(server)
            kept = _image()
            with OciClient.connect(server.url) as client:
                client.push("lab/kept", kept, "v1")
                filler = fill(blobs)
                for _ in range(4):  # whichever worker takes it
                    _assert_insufficient_storage(_push_blob(client, "lab/new", b"y" * 300_000), BLOB_STORAGE)
                # What needs no new bytes in blob storage still works.
                assert client.put_manifest("lab/kept", "v2", kept).status_code == 201
                assert client.get_blob("lab/kept", kept.blobs[0].digest).content == kept.blobs[0].data
                _assert_no_process_died(server, workers)

                filler.unlink()
                again = _image()
                client.push("lab/kept", again, "v3")
                assert client.get_manifest("lab/kept", "v3").content == again.body
            _assert_no_process_died(server, workers)
        finally:
            server.stop()
