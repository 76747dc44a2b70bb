"""An archive upload whose import dies with its worker process while the server's other
workers serve on: they know at once that the import's process is gone, without waiting for
its lease to run out (the restart of the whole server is in test_archive_upload). And a
server killed while it finishes an import, with and without the archive journal (two
replicas handing a finishing import on: test_archive_replicas)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from dockyard.transfer.imports.finishing import FINISH_GATE_ENV
from tests.support.archive_crash import TOKEN_ENV, kill_mid_import
from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.database import sql
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.servers import kill_hard, private_dockyard

pytestmark = pytest.mark.clients


def test_when_the_worker_holding_an_import_dies_the_others_resume_it_at_once(
    db_kind: str, tmp_path: Path
) -> None:
    env = {**TOKEN_ENV, "DOCKYARD_WORKERS": "2"}
    with private_dockyard(db_kind, tmp_path, env) as (server, _restart):
        killed = kill_mid_import(server, only_the_holder=True)
        with CatalogUser.connect(server, killed.user) as user:
            uploads = Uploads(user.http)
            status = uploads.status(killed.archive_id)
            assert (status["state"], status["offset"]) == ("receiving", killed.checkpoint), (
                f"the dead import had shown {killed.offset_at_crash}"
            )
            assert not killed.leftovers & killed.files(), "the dead import's leftovers are still there"
            rest = killed.archive[killed.checkpoint :]
            sent = uploads.send(killed.archive_id, rest, killed.checkpoint, len(killed.archive))
            assert sent.status_code == 202, sent.text
            assert uploads.complete(killed.archive_id).json()["state"] == "done"
            uploads.create(killed.archive_id, version="1")
            repository = f"{killed.user}/resumed"
            with oci_as(server, killed.user, PASSWORD) as oci:
                manifest = oci.get_manifest(repository, "1").json()
                layers = [oci.get_blob(repository, d["digest"]).content for d in manifest["layers"]]
            assert [gzip.decompress(layer) for layer in layers] == killed.layers


@pytest.mark.parametrize("journal", [False, True], ids=["no-journal", "journal"])
def test_a_server_killed_while_finishing_an_import(db_kind: str, journal: bool, tmp_path: Path) -> None:
    """Killed (SIGKILL) after the last PUT, while finishing (held at a test gate), then
    restarted. Without the journal (the one-machine default) the upload is at once back at its
    stored checkpoint and the client sends the rest. With it, the import was finished under a
    durable job: the restarted server's worker takes the job once its lease runs out and
    finishes the import from the checkpoint and the journal, the client sending nothing again."""
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {
        **TOKEN_ENV,
        FINISH_GATE_ENV: str(gate),
        "DOCKYARD_ARCHIVE_JOURNAL": str(journal).lower(),
        "DOCKYARD_JOB_LEASE_SECONDS": "3",
        "DOCKYARD_JOB_RECOVER_SECONDS": "0.5",
    }
    layers = [random_layer(3 << 20, f"data/{i}.bin") for i in range(4)]
    archive = docker_save([SavedImage(layers, ["kept:1"])])
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, restart):
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            name = new_user(admin, "kept")
        with CatalogUser.connect(server, name) as user:
            uploads = Uploads(user.http)
            archive_id = uploads.start(name, len(archive))
            uploads.send_all(archive_id, archive, 1 << 20)
            started = user.http.put(f"/archives/{archive_id}", params={"wait": "false"})
            assert started.status_code == 202, started.text
        deadline = time.monotonic() + 60
        while not (gate / "started").exists():
            assert time.monotonic() < deadline, "the server never started finishing"
            time.sleep(0.05)
        ((kept,),) = sql(server, "SELECT resume_offset FROM archive_uploads WHERE id = :id", id=archive_id)
        kill_hard(server)
        (gate / "open").touch()  # the restarted server's own finishing goes through
        again = restart()
        with CatalogUser.connect(again, name) as user:
            uploads = Uploads(user.http)
            if journal:
                status = uploads.after_importing(archive_id)
            else:  # known at once: no job, no lease to wait for
                status = uploads.status(archive_id)
                assert status["state"] == "receiving", status
                offset = status["offset"]
                assert offset == kept < len(archive), status  # the stored checkpoint
                assert f"send the archive from offset {offset}" in status["reason"]
                uploads.send_all(archive_id, archive, 1 << 20, start=offset)
                status = uploads.complete(archive_id).json()
            assert status["state"] == "done", status
            uploads.create(archive_id, version="1")
        with oci_as(again, name, PASSWORD) as oci:
            manifest = oci.get_manifest(f"{name}/kept", "1").json()
            pulled = [oci.get_blob(f"{name}/kept", d["digest"]).content for d in manifest["layers"]]
        assert [gzip.decompress(layer) for layer in pulled] == layers
        jobs = sql(
            again,
            "SELECT status, attempt FROM jobs WHERE dedupe_key = :key ORDER BY id",
            key=f"archive.finish:{archive_id}",
        )
        assert [tuple(job) for job in jobs] == ([("succeeded", 2)] if journal else []), jobs
