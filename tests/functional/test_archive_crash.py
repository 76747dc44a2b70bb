"""An archive upload whose import dies with its worker process while the server's other
workers serve on: they know at once that the import's process is gone, without waiting for
its lease to run out (the restart of the whole server is in test_archive_upload)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.support.archive_crash import TOKEN_ENV, kill_mid_import
from tests.support.archives import Uploads
from tests.support.catalog import CatalogUser
from tests.support.identity import PASSWORD, oci_as
from tests.support.servers import private_dockyard

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
