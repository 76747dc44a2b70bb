"""``dockyard gc`` and archive upload sessions: expired sessions and folders without a
session go, and a session whose import died with its server is taken back to its checkpoint
(what the dead import left goes, the session stays resumable). Each test runs its own Dockyard."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.archive_crash import TOKEN_ENV, kill_mid_import
from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api
from tests.support.servers import RunningRegistry, private_dockyard

pytestmark = pytest.mark.clients


def gc(server: RunningRegistry, *args: str, **env: str) -> dict[str, Any]:
    """``dockyard gc ARGS`` with the server's settings (and ``env``); its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", *args],
        env={**server.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_gc_takes_back_an_import_that_died_with_its_server(db_kind: str, tmp_path: Path) -> None:
    with private_dockyard(db_kind, tmp_path, TOKEN_ENV) as (server, restart):
        killed = kill_mid_import(server)

        dry = gc(server, "--dry-run")
        assert dry["archive_imports"] == [killed.archive_id]
        assert dry["archive_files_removed"] == len(killed.leftovers)
        assert killed.leftovers <= killed.files(), "a dry run deletes nothing"

        report = gc(server)
        assert report["archive_imports_reclaimed"] == 1
        assert report["archive_imports"] == [killed.archive_id]
        assert report["archive_files_removed"] == len(killed.leftovers)
        assert report["archive_sessions_purged"] == 0
        assert not killed.leftovers & killed.files()
        assert (killed.folder / "checkpoint").exists()
        assert gc(server)["archive_imports_reclaimed"] == 0, "taken back once"

        again = restart()
        with CatalogUser.connect(again, killed.user) as user:
            uploads = Uploads(user.http)
            status = uploads.status(killed.archive_id)
            assert (status["state"], status["offset"]) == ("receiving", killed.checkpoint)
            rest = killed.archive[killed.checkpoint :]
            sent = uploads.send(killed.archive_id, rest, killed.checkpoint, len(killed.archive))
            assert sent.status_code == 202, sent.text
            done = uploads.complete(killed.archive_id).json()
            assert (done["state"], done["processed"]) == ("done", len(killed.archive))


def test_gc_purges_expired_archive_sessions_and_folders_without_one(db_kind: str, tmp_path: Path) -> None:
    with private_dockyard(db_kind, tmp_path, TOKEN_ENV) as (server, _restart):
        archive = docker_save([SavedImage([random_layer(2 << 20, "data/a.bin")], ["idle:1"])])
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            name = new_user(admin, "idler")
        with CatalogUser.connect(server, name) as user:
            uploads = Uploads(user.http)
            archive_id = uploads.start(name, len(archive))
            sent = len(archive) - 1024  # the layer is staged; the upload is not complete
            assert uploads.send(archive_id, archive[:sent], 0, len(archive)).status_code == 202
            archives = server.data_dir / "storage" / "archives"
            deadline = time.monotonic() + 60
            while not any((archives / archive_id / "blobs").glob("*")):  # the import works on
                assert time.monotonic() < deadline, "the layer was never staged"
                time.sleep(0.05)
            orphan = archives / str(uuid.uuid4())
            (orphan / "staging").mkdir(parents=True)
            (orphan / "staging" / "left-by-a-crash").write_bytes(b"x" * 100)

            kept = gc(server)  # the default purge period: nothing is old enough
            assert (kept["archive_sessions_purged"], kept["archive_folders_purged"]) == (0, 1)
            assert not orphan.exists()
            assert uploads.status(archive_id)["offset"] == sent

            expire = {"DOCKYARD_UPLOAD_PURGE_SECONDS": "0.001"}
            dry = gc(server, "--dry-run", **expire)
            assert dry["archive_sessions"] == [archive_id]
            assert (archives / archive_id).exists()

            report = gc(server, **expire)
            assert report["archive_sessions_purged"] == 1
            assert report["archive_sessions"] == [archive_id]
            assert not (archives / archive_id).exists()
            assert user.http.get(f"/archives/{archive_id}").status_code == 404
