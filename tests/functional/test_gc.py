"""Garbage collection through the real server and the real ``dockyard gc`` command.

Each test runs its own Dockyard: collecting with a short grace period would otherwise
remove what other tests are in the middle of pushing.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from tests.support.database import sql
from tests.support.oci import (
    OCI_LAYER,
    Blob,
    Manifest,
    OciClient,
    artifact,
    image_config,
    location_of,
    oci_manifest,
    random_blob,
    sha256,
    with_query,
)
from tests.support.servers import RunningRegistry, dockyard_cli, private_dockyard


def _image(shared: bytes | None = None, layers: int = 2) -> Manifest:
    blobs = [random_blob(4096 + i) for i in range(layers)]
    if shared is not None:
        blobs.append(Blob(shared, OCI_LAYER))
    return oci_manifest(image_config(layers=len(blobs)), blobs)


def _blob_file(server: RunningRegistry, digest: str) -> Path:
    hex_ = digest.split(":", 1)[1]
    return server.data_dir / "storage" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


def _assert_pulls(client: OciClient, repo: str, tag: str, manifest: Manifest) -> None:
    resp = client.get_manifest(repo, tag)
    assert resp.status_code == 200, resp.text
    assert resp.content == manifest.body
    for blob in manifest.blobs:
        got = client.get_blob(repo, blob.digest)
        assert got.status_code == 200, f"{blob.digest}: {got.status_code}"
        assert sha256(got.content) == blob.digest


def test_gc_dry_run_reports_and_real_run_deletes_only_garbage(db_kind: str, tmp_path: Path) -> None:
    with private_dockyard(db_kind, tmp_path) as (server, _restart), OciClient.connect(server.url) as client:
        shared = b"a layer both images use" * 100
        kept, doomed = _image(shared), _image(shared)
        client.push("lab/kept", kept, "v1")
        client.push("lab/doomed", doomed, "v1")
        assert client.delete_manifest("lab/doomed", "v1").status_code == 202  # untag: now garbage
        doomed_only = [b.digest for b in doomed.blobs if b.digest != sha256(shared)]

        dry = dockyard_cli(server, "gc", "--dry-run", "--grace-seconds", "0")
        assert dry.returncode == 0, dry.stderr
        report = json.loads(dry.stdout)
        assert report["dry_run"] is True
        assert report["manifests"] == [f"lab/doomed@{doomed.digest}"]
        assert sorted(report["blobs"]) == sorted(doomed_only)
        for digest in doomed_only:  # nothing was deleted
            assert _blob_file(server, digest).exists()
        assert client.get_manifest("lab/doomed", doomed.digest).status_code == 200

        real = dockyard_cli(server, "gc", "--grace-seconds", "0")
        assert real.returncode == 0, real.stderr
        done = json.loads(real.stdout)
        assert sorted(done["blobs"]) == sorted(report["blobs"])
        assert done["manifests"] == report["manifests"]
        assert done["bytes_freed"] == sum(b.size for b in doomed.blobs if b.digest in doomed_only)
        for digest in doomed_only:
            assert not _blob_file(server, digest).exists()
            assert client.head_blob("lab/doomed", digest).status_code == 404
        assert client.get_manifest("lab/doomed", doomed.digest).status_code == 404
        # The shared layer and everything tagged survive.
        _assert_pulls(client, "lab/kept", "v1", kept)
        assert _blob_file(server, sha256(shared)).exists()


def test_gc_by_hand_waits_for_no_one_while_a_collection_runs_elsewhere(db_kind: str, tmp_path: Path) -> None:
    """``dockyard gc`` takes the lease the servers' periodic collection holds: while another
    process holds it the command deletes nothing and says who holds it; afterwards it collects,
    and it gives the lease back (the next collection need not wait for it to run out)."""
    with private_dockyard(db_kind, tmp_path) as (server, _restart), OciClient.connect(server.url) as client:
        doomed = _image()
        client.push("lab/doomed", doomed, "v1")
        assert client.delete_manifest("lab/doomed", "v1").status_code == 202
        sql(
            server,
            "INSERT INTO leases (name, holder, expires_at) VALUES ('gc', 'replica-b worker 2', :until)",
            until=time.time() + 3600,
        )

        busy = dockyard_cli(server, "gc", "--grace-seconds", "0")
        assert busy.returncode == 1
        assert "a garbage collection is running in another process (replica-b worker 2" in busy.stderr
        assert "Traceback" not in busy.stderr
        for blob in doomed.blobs:
            assert _blob_file(server, blob.digest).exists()
        dry = dockyard_cli(server, "gc", "--dry-run", "--grace-seconds", "0")  # deletes nothing: no lease
        assert dry.returncode == 0, dry.stderr
        assert sorted(json.loads(dry.stdout)["blobs"]) == sorted(b.digest for b in doomed.blobs)

        sql(server, "UPDATE leases SET expires_at = :past WHERE name = 'gc'", past=time.time() - 1)
        done = dockyard_cli(server, "gc", "--grace-seconds", "0")
        assert done.returncode == 0, done.stderr
        assert sorted(json.loads(done.stdout)["blobs"]) == sorted(b.digest for b in doomed.blobs)
        for blob in doomed.blobs:
            assert not _blob_file(server, blob.digest).exists()
        assert sql(server, "SELECT holder FROM leases WHERE name = 'gc'") == []


def test_gc_keeps_referrers_of_live_images_and_young_content(db_kind: str, tmp_path: Path) -> None:
    with private_dockyard(db_kind, tmp_path) as (server, _restart), OciClient.connect(server.url) as client:
        image = _image()
        client.push("lab/signed", image, "v1")
        signature = artifact(image, "application/vnd.example.signature")
        client.push("lab/signed", signature)  # untagged, but its subject is tagged
        young = random_blob(999)
        client.push_blob("lab/signed", young)  # no manifest yet: a push in progress

        report = json.loads(dockyard_cli(server, "gc", "--grace-seconds", "0").stdout)
        assert report["manifests"] == []
        assert client.get_manifest("lab/signed", signature.digest).status_code == 200
        listed = client.referrers("lab/signed", image.digest).json()["manifests"]
        assert [d["digest"] for d in listed] == [signature.digest]
        assert young.digest in report["blobs"]  # grace 0: an unreferenced blob goes

        client.push_blob("lab/signed", young)
        kept = json.loads(dockyard_cli(server, "gc", "--grace-seconds", "3600").stdout)
        assert kept["blobs"] == []  # within the grace period it stays
        assert client.blob_exists("lab/signed", young.digest)


def test_periodic_gc_runs_online_while_pushes_continue(db_kind: str, tmp_path: Path) -> None:
    env = {"DOCKYARD_GC_INTERVAL_SECONDS": "0.5", "DOCKYARD_GC_GRACE_SECONDS": "2"}
    with (
        private_dockyard(db_kind, tmp_path, env) as (server, _restart),
        OciClient.connect(server.url) as client,
    ):
        garbage = _image()
        client.push("lab/old", garbage, "v1")
        assert client.delete_manifest("lab/old", "v1").status_code == 202
        garbage_blobs = [b.digest for b in garbage.blobs]

        pushed: list[tuple[str, Manifest]] = []
        failures: list[str] = []
        stop = threading.Event()

        def pusher(worker: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                own = OciClient(http)
                n = 0
                while not stop.is_set() and n < 25:
                    image = _image(layers=3)
                    tag = f"w{worker}-{n}"
                    try:
                        own.push("lab/busy", image, tag)
                        pushed.append((tag, image))
                    except AssertionError as exc:
                        failures.append(str(exc))
                    n += 1

        threads = [threading.Thread(target=pusher, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_blob_file(server, d).exists() for d in garbage_blobs):
            time.sleep(0.25)
        # A few more collections run during the pushes (each one logs its end).
        collected = server.log().count("gc finished")
        while server.log().count("gc finished") < collected + 3:
            assert time.monotonic() < deadline + 30, "the periodic GC stopped running"
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()

        assert failures == []
        assert not any(_blob_file(server, d).exists() for d in garbage_blobs), "periodic GC did not collect"
        assert len(pushed) > 10
        for tag, image in pushed:
            _assert_pulls(client, "lab/busy", tag, image)
        assert "gc finished" in server.log()


def _push_recording(http: httpx.Client, repo: str, tag: str, image: Manifest) -> list[int]:
    """Push ``image`` as a client does, stopping at the first refusal; every status answered."""
    statuses: list[int] = []
    for blob in image.blobs:
        started = http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        statuses.append(started.status_code)
        if started.status_code != 202:
            return statuses
        put = http.put(
            with_query(location_of(started), digest=blob.digest),
            content=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        statuses.append(put.status_code)
        if put.status_code != 201:
            return statuses
    put = http.put(
        f"/v2/{repo}/manifests/{tag}", content=image.body, headers={"Content-Type": image.media_type}
    )
    statuses.append(put.status_code)
    return statuses


def test_pushes_sharing_a_layer_while_gc_runs_without_grace_lose_nothing(
    db_kind: str, tmp_path: Path
) -> None:
    """GC with no grace period runs every few milliseconds while clients push images that
    share a layer. A push may be refused (GC took a layer whose manifest had not arrived yet:
    a 4xx, and the client pushes again), but no request fails on the server, and every image
    whose manifest was acknowledged pulls whole."""
    env = {"DOCKYARD_GC_INTERVAL_SECONDS": "0.05", "DOCKYARD_GC_GRACE_SECONDS": "0"}
    shared = random_blob(64 * 1024).data
    with private_dockyard(db_kind, tmp_path, env) as (server, _restart):
        acknowledged: list[tuple[str, str, Manifest]] = []
        statuses: list[int] = []

        def pusher(worker: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for n in range(8):
                    image = _image(shared, layers=1)
                    repo, tag = f"lab/shared-{worker % 2}", f"w{worker}-{n}"
                    for _attempt in range(10):
                        answered = _push_recording(http, repo, tag, image)
                        statuses.extend(answered)
                        if answered[-1] == 201 and len(answered) == 2 * len(image.blobs) + 1:
                            acknowledged.append((repo, tag, image))
                            break

        threads = [threading.Thread(target=pusher, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert [s for s in statuses if s >= 500] == []
        assert len(acknowledged) >= 5, f"too few pushes went through to check anything: {statuses}"
        with OciClient.connect(server.url) as client:
            for repo, tag, image in acknowledged:
                _assert_pulls(client, repo, tag, image)
        assert "gc finished" in server.log()
