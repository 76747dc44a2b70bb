"""An archive upload whose chunks land on different replicas: two Dockyard servers (separate
processes, data folders of their own, so no socket between them) sharing one PostgreSQL
database, one storage folder and the keys, as behind a load balancer without sticky sessions.

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
from pathlib import Path

from tests.support.archive_crash import TOKEN_ENV
from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry, postgres_database, start_dockyard

LAYER = 3 << 20
CHUNK = 700 << 10  # smaller than a layer: most chunks end with no entry boundary in them


def start_replicas(base: Path, database_url: str) -> list[RunningRegistry]:
    env = {
        **TOKEN_ENV,
        "DOCKYARD_WORKERS": "1",
        "DOCKYARD_STORAGE_ROOT": str(base / "storage"),
        "DOCKYARD_ARCHIVE_JOURNAL": "true",
    }
    first = start_dockyard("postgres", base / "a", database_url, env)
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
