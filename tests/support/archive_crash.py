"""A server killed in the middle of an archive import, for the tests of what happens next:
the session's state after a restart, resuming it, and what ``dockyard gc`` does with it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.servers import RunningRegistry, kill_hard, worker_pids

TOKEN_ENV = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}
LAYER = 8 << 20  # over the import's 4 MiB buffer: a layer's scratch file is open while it arrives
FIRST_PART = 5 << 20  # sent in a first request; the rest streams, slowly from the second layer on


@dataclass(frozen=True)
class KilledImport:
    user: str
    archive_id: str
    archive: bytes
    layers: list[bytes]  # the image's layers, uncompressed
    folder: Path  # the session's folder in the data folder's storage
    checkpoint: int  # the offset of the checkpoint stored when the server died
    offset_at_crash: int  # the offset the session showed while its import ran
    leftovers: frozenset[Path]  # files the dead import left that its checkpoint does not name

    def files(self) -> set[Path]:
        """The files in the session's staging and staged blobs now."""
        return {p for part in ("staging", "blobs") for p in (self.folder / part).glob("*") if p.is_file()}


def _checkpoint(folder: Path) -> tuple[int, set[Path]]:
    """The stored checkpoint's offset and the staged blobs it names."""
    doc = json.loads((folder / "checkpoint").read_bytes())
    named = {
        folder / "blobs" / digest.split(":", 1)[1]
        for digest, _size, staged in doc["sink"]["blobs"].values()
        if staged
    }
    return int(doc["reader"]["offset"]), named


def holder_pid(server: RunningRegistry, folder: Path) -> int:
    """The server process whose import writes into the session ``folder`` (it has a scratch
    file of the folder's staging open)."""
    staging = str(folder / "staging")
    for pid in worker_pids(server):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd).startswith(staging) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
    raise AssertionError(f"no process of the server has a file of {staging} open")


def kill_mid_import(server: RunningRegistry, only_the_holder: bool = False) -> KilledImport:
    """Upload a docker-save archive in chunks to ``server`` (token mode) and kill it (SIGKILL)
    while a chunk streams: past a stored checkpoint, with the import in the middle of a layer
    (a scratch file in staging) and ahead of its checkpoint. The whole server with its
    workers, or ``only_the_holder``: the worker process whose import it is (the others serve on)."""
    layers = [random_layer(LAYER, f"data/{i}.bin") for i in range(3)]
    archive = docker_save([SavedImage(layers, ["resumed:1"])])
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        name = new_user(admin, "resumer")
    with CatalogUser.connect(server, name) as user:
        uploads = Uploads(user.http)
        archive_id = uploads.start(name, len(archive))
        assert uploads.send(archive_id, archive[:FIRST_PART], 0, len(archive)).status_code == 202
        folder = server.data_dir / "storage" / "archives" / archive_id
        done_sending = threading.Event()

        def slow_body() -> Iterator[bytes]:
            step = 256 * 1024
            for i in range(FIRST_PART, len(archive), step):
                yield archive[i : i + step]
                if i >= FIRST_PART + LAYER:
                    time.sleep(0.3)  # the rest trickles in: the request is still open at the crash
            done_sending.set()

        def stream() -> None:
            # The server dies under it: an error here is expected.
            with (
                httpx.Client(base_url=f"{server.url}/api/v1", auth=(name, PASSWORD), timeout=30) as http,
                contextlib.suppress(httpx.HTTPError),
            ):
                http.patch(
                    f"/archives/{archive_id}",
                    content=slow_body(),
                    headers={"Content-Range": f"bytes {FIRST_PART}-{len(archive) - 1}/{len(archive)}"},
                )

        streamer = threading.Thread(target=stream)
        streamer.start()
        deadline = time.monotonic() + 60

        def ready() -> int | None:
            """The offset shown, once the import is where the crash should find it."""
            if not (folder / "checkpoint").exists() or not any((folder / "staging").glob("*")):
                return None
            offset, _named = _checkpoint(folder)
            shown = int(uploads.status(archive_id)["offset"])
            return shown if FIRST_PART < offset < shown else None

        while (shown := ready()) is None:
            assert time.monotonic() < deadline, "the import never got past a checkpoint mid-layer"
            time.sleep(0.05)
        assert not done_sending.is_set()
        if only_the_holder:
            os.kill(holder_pid(server, folder), signal.SIGKILL)
        else:
            kill_hard(server)
        streamer.join(60)
    checkpoint, named = _checkpoint(folder)
    left = {p for part in ("staging", "blobs") for p in (folder / part).glob("*") if p.is_file()} - named
    assert any(p.parent.name == "staging" for p in left), "the crash left no scratch file to clean up"
    return KilledImport(name, archive_id, archive, layers, folder, checkpoint, shown, frozenset(left))
