"""An archive upload whose chunks land on different replicas: two Dockyard servers (separate
processes, data folders of their own, so no socket between them) sharing one PostgreSQL
database, one storage folder and the keys, as behind a load balancer without sticky sessions.
And a replica killed while it finishes an import: its job hands the import on to the other.

With ``DOCKYARD_ARCHIVE_JOURNAL`` on, every chunk goes to the other replica than the one
before, and each must be taken where the last ended (202 with the new offset; never a 416
asking to send again from a checkpoint), although the layers are larger than the chunks (no
tar entry ends inside most chunks, so no checkpoint does either): the import goes on from the
checkpoint and the journal the other replica left in storage. The finished archive's image is
pulled back byte-identical from both. Replicas share PostgreSQL (SQLite is the one-machine
deployment), so this runs on it alone.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from dockyard.transfer.imports.finishing import FINISH_GATE_ENV
from tests.support.archive_crash import TOKEN_ENV
from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.database import sql
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry, kill_hard, postgres_database, start_dockyard

LAYER = 3 << 20
CHUNK = 700 << 10  # smaller than a layer: most chunks end with no entry boundary in them


def start_replicas(
    base: Path, database_url: str, env: dict[str, str] | None = None, first_env: dict[str, str] | None = None
) -> list[RunningRegistry]:
    """Two replicas; ``env`` for both, ``first_env`` for the first alone."""
    env = {
        **TOKEN_ENV,
        "DOCKYARD_WORKERS": "1",
        "DOCKYARD_STORAGE_ROOT": str(base / "storage"),
        "DOCKYARD_ARCHIVE_JOURNAL": "true",
        **(env or {}),
    }
    first = start_dockyard("postgres", base / "a", database_url, {**env, **(first_env or {})})
    try:
        (base / "b" / "data").mkdir(parents=True)
        os.symlink(first.data_dir / "keys", base / "b" / "data" / "keys")  # replicas share the keys
        return [first, start_dockyard("postgres", base / "b", database_url, env)]
    except BaseException:
        first.stop()
        raise


def test_chunks_alternating_between_replicas_are_each_taken_where_the_last_ended(tmp_path: Path) -> None:
    layers = [random_layer(LAYER, f"data/{i}.bin") for i in range(3)]
    archive = docker_save([SavedImage(layers, ["spread:1"])])
    with postgres_database() as url:
        replicas = start_replicas(tmp_path, url)
        try:
            with Api.connect(replicas[0], ADMIN, ADMIN_PASSWORD) as admin:
                name = new_user(admin, "spread")
            with (
                CatalogUser.connect(replicas[0], name) as on_a,
                CatalogUser.connect(replicas[1], name) as on_b,
            ):
                clients = [Uploads(on_a.http), Uploads(on_b.http)]
                archive_id = clients[0].start(name, len(archive))
                sent = 0
                for turn, offset in enumerate(range(0, len(archive), CHUNK)):
                    end = min(offset + CHUNK, len(archive))
                    answer = clients[(turn + 1) % 2].send(
                        archive_id, archive[offset:end], offset, len(archive)
                    )
                    assert answer.status_code == 202, (turn, answer.status_code, answer.text)
                    assert answer.json()["offset"] == end
                    sent += 1
                assert sent > 2 * len(layers)
                done = clients[0].finish(archive_id)
                assert done["state"] == "done", done
                clients[1].create(archive_id, version="1")
            for replica in replicas:
                with oci_as(replica, name, PASSWORD) as oci:
                    manifest = oci.get_manifest(f"{name}/spread", "1").json()
                    pulled = [oci.get_blob(f"{name}/spread", d["digest"]).content for d in manifest["layers"]]
                assert [gzip.decompress(layer) for layer in pulled] == layers
        finally:
            for replica in replicas:
                replica.stop()


def _pull_layers(replica: RunningRegistry, user: str, repository: str, tag: str) -> list[bytes]:
    with oci_as(replica, user, PASSWORD) as oci:
        manifest = oci.get_manifest(repository, tag).json()
        return [gzip.decompress(oci.get_blob(repository, d["digest"]).content) for d in manifest["layers"]]


def test_a_replica_killed_while_finishing_an_import_hands_it_on_to_another(tmp_path: Path) -> None:
    """``PUT ?wait=false`` on replica A: A finishes the import under a durable job. A is
    SIGKILLed while it does (held at a test gate, after the job started); the job's lease runs
    out, B's worker takes the job, finds A dead, takes the import over from the checkpoint and
    the journal, and finishes it. The client, asking B, sees the upload importing (never back
    to receiving) until it is done, and the image pulls back byte-identical."""
    layers = [random_layer(LAYER, f"data/{i}.bin") for i in range(2)]
    archive = docker_save([SavedImage(layers, ["handed:1"])])
    gate = tmp_path / "gate"
    gate.mkdir()
    fast_jobs = {"DOCKYARD_JOB_LEASE_SECONDS": "3", "DOCKYARD_JOB_RECOVER_SECONDS": "0.5"}
    with postgres_database() as url:
        replicas = start_replicas(tmp_path, url, fast_jobs, {FINISH_GATE_ENV: str(gate)})
        try:
            with Api.connect(replicas[1], ADMIN, ADMIN_PASSWORD) as admin:
                name = new_user(admin, "handed")
            with CatalogUser.connect(replicas[0], name) as on_a:
                uploads = Uploads(on_a.http)
                archive_id = uploads.start(name, len(archive))
                uploads.send_all(archive_id, archive, CHUNK)
                started = on_a.http.put(f"/archives/{archive_id}", params={"wait": "false"})
                assert started.status_code == 202, started.text
                assert started.json()["state"] == "importing"
            deadline = time.monotonic() + 60
            while not (gate / "started").exists():  # A's finishing has begun, under its job
                assert time.monotonic() < deadline, "replica A never started finishing"
                time.sleep(0.05)
            kill_hard(replicas[0])
            with CatalogUser.connect(replicas[1], name) as on_b:
                uploads = Uploads(on_b.http)
                status = uploads.after_importing(archive_id)
                assert status["state"] == "done", status
                assert status["processed"] == len(archive)
                uploads.create(archive_id, version="1")
            assert _pull_layers(replicas[1], name, f"{name}/handed", "1") == layers
            (job,) = sql(
                replicas[1],
                "SELECT status, attempt FROM jobs WHERE dedupe_key = :key",
                key=f"archive.finish:{archive_id}",
            )
            assert tuple(job) == ("succeeded", 2), "finished by the job's second run, on B"
        finally:
            for replica in replicas:
                replica.stop()
