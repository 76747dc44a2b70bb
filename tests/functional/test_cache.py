"""The lookup cache never serves what a write has changed: across the worker processes of
one server (shared-memory generations) and across replicas sharing PostgreSQL (NOTIFY)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.oci import ACCEPT_MANIFESTS, OciClient, oci_manifest
from tests.support.servers import RunningRegistry, postgres_database, start_dockyard

ROUNDS = 24  # fresh connections, spread by the kernel over every worker process


def _digests_seen(server: RunningRegistry, repo: str, tag: str) -> set[str]:
    seen = set()
    for _ in range(ROUNDS):
        with httpx.Client(base_url=server.url) as fresh:  # a new connection: any worker may answer
            resp = fresh.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT_MANIFESTS})
        seen.add(resp.headers.get("docker-content-digest", str(resp.status_code)))
    return seen


def test_workers_never_serve_a_moved_or_deleted_tag(registry: RunningRegistry) -> None:
    first, second = oci_manifest(), oci_manifest()
    repo = "cache/workers"
    with OciClient.connect(registry.url) as client:
        client.push(repo, first, "v1")
        assert _digests_seen(registry, repo, "v1") == {first.digest}  # every worker has cached it
        client.push(repo, second, "v1")
        assert _digests_seen(registry, repo, "v1") == {second.digest}
        assert client.delete_manifest(repo, "v1").status_code == 202
        assert _digests_seen(registry, repo, "v1") == {"404"}
        assert client.delete_manifest(repo, second.digest).status_code == 202
        for blob in second.blobs:
            assert client.get_blob(repo, blob.digest).status_code == 200
        blob = second.blobs[-1]
        assert client.delete_blob(repo, blob.digest).status_code == 202
        for _ in range(ROUNDS):
            with httpx.Client(base_url=registry.url) as fresh:
                assert fresh.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404


def _eventually(server: RunningRegistry, repo: str, tag: str, expected: str, seconds: float = 1.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        seen = _digests_seen(server, repo, tag)
        if seen == {expected} or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert seen == {expected}


def test_replicas_sharing_postgres_see_each_others_writes(tmp_path: Path) -> None:
    with postgres_database() as url:
        a = start_dockyard("postgres", tmp_path / "a", url)
        b = start_dockyard("postgres", tmp_path / "b", url)
        try:
            first, second = oci_manifest(), oci_manifest()
            repo = "cache/replicas"
            # Manifests live in the shared database, so b serves them without a's blob folder.
            with OciClient.connect(a.url) as on_a:
                on_a.push(repo, first, "v1")
            assert _digests_seen(b, repo, "v1") == {first.digest}  # b has cached v1
            with OciClient.connect(a.url) as on_a:
                on_a.push_blobs(repo, second.blobs)
                on_a.push_manifest(repo, "v1", second)
            _eventually(b, repo, "v1", second.digest)
            with OciClient.connect(a.url) as on_a:
                assert on_a.delete_manifest(repo, "v1").status_code == 202
            _eventually(b, repo, "v1", "404")
        finally:
            a.stop()
            b.stop()
