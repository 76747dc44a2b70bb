"""``dockyard image upload``, run as a user runs it: a subprocess with its own config file
against a token-mode server; the created versions are checked through the API."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockyard.transfer.imports.finishing import FINISH_GATE_ENV
from tests.support.archive_crash import TOKEN_ENV
from tests.support.archives import SavedImage, docker_save, docker_save_with, entry, oci_archive, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.database import sql
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry, private_dockyard

pytestmark = pytest.mark.clients


def _env(config: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return {**base, "DOCKYARD_CLI_CONFIG": str(config), "COLUMNS": "200"}


def _cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_env(config),
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def user(token_registry: RunningRegistry, tmp_path: Path) -> tuple[str, Path]:
    """A fresh user logged in with the CLI: (username, config file)."""
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        name = new_user(admin, "cli-uploader")
    config = tmp_path / "cli.toml"
    login = _cli(config, "login", token_registry.url, "-u", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    return name, config


def test_image_upload_creates_the_version(
    token_registry: RunningRegistry, user: tuple[str, Path], tmp_path: Path
) -> None:
    name, config = user
    archive = tmp_path / "tool.tar.gz"
    archive.write_bytes(gzip.compress(docker_save([SavedImage([random_layer(200_000)], ["lab/tool:3.1"])])))

    done = _cli(config, "image", "upload", str(archive), "--type", "bench", "--region", "eu", "--json", "-q")

    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert (created["image"], created["version"], created["kind"]) == (f"{name}/tool", "3.1", "bench")
    assert created["regions"] == ["eu"]
    with CatalogUser.connect(token_registry, name) as me:
        assert me.wait_inspected(f"{name}/tool", "3.1")["status"] == "available"
        assert me.http.get("/archives").json() == []  # the CLI removed its session

    shown = _cli(config, "image", "upload", str(archive), "--version", "3.2")
    assert shown.returncode == 0, shown.stderr
    assert f"Created {name}/tool:3.2" in shown.stdout
    assert "were already stored" in shown.stdout


def test_image_upload_resumes_after_it_was_killed(
    token_registry: RunningRegistry, user: tuple[str, Path], tmp_path: Path
) -> None:
    name, config = user
    archive = tmp_path / "big.oci.tar"
    archive.write_bytes(oci_archive([random_layer(64 << 20)], "big:1"))
    first = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "image", "upload", str(archive), "--chunk-size", "1", "-q"],
        env=_env(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with CatalogUser.connect(token_registry, name) as me:
            deadline = time.monotonic() + 60
            while not (sessions := me.http.get("/archives").json()) or sessions[0]["offset"] == 0:
                assert time.monotonic() < deadline, "the upload did not start"
                assert first.poll() is None, "the upload ended before it could be interrupted"
                time.sleep(0.005)
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            offset = me.http.get("/archives").json()[0]["offset"]
            assert 0 < offset < archive.stat().st_size

            again = _cli(config, "image", "upload", str(archive), "--chunk-size", "8")

            assert again.returncode == 0, again.stderr
            # From where the server had got to: at least the offset read after the kill (the
            # server may still have been taking in the killed client's last chunk then).
            size = archive.stat().st_size
            resumed = re.search(rf"Resuming the upload at byte (\d+) of {size}", again.stderr)
            assert resumed is not None, again.stderr
            assert offset <= int(resumed[1]) < size
            assert f"Created {name}/big:1" in again.stdout
            assert me.wait_inspected(f"{name}/big", "1")["status"] == "available"
            assert me.http.get("/archives").json() == []
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_image_upload_explains_a_refused_archive(user: tuple[str, Path], tmp_path: Path) -> None:
    _, config = user
    archive = tmp_path / "evil.tar"
    archive.write_bytes(docker_save_with([entry("../../etc/cron.d/evil", b"* * * * * root sh\n")]))

    done = _cli(config, "image", "upload", str(archive), "--name", "evil", "--version", "1")

    assert done.returncode == 1
    assert "error: the archive was refused: path traversal ('..')" in done.stderr


def test_image_upload_sends_again_what_an_interrupted_import_lost(db_kind: str, tmp_path: Path) -> None:
    """The server process finishing the upload's import is killed (SIGKILL, held at a test gate)
    while the CLI follows the import: the server's other worker takes the session back to its
    stored checkpoint at once, and the same command sends the rest again and creates the
    version (before, it said the archive was refused and forgot the session)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**TOKEN_ENV, FINISH_GATE_ENV: str(gate), "DOCKYARD_WORKERS": "2"}
    layers = [random_layer(3 << 20, f"data/{i}.bin") for i in range(4)]
    archive = tmp_path / "tool.tar"
    archive.write_bytes(docker_save([SavedImage(layers, ["lab/tool:1"])]))
    size = archive.stat().st_size
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, _restart):
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            name = new_user(admin, "resender")
        config = tmp_path / "cli.toml"
        login = _cli(config, "login", server.url, "-u", name, "--password-stdin", stdin=PASSWORD + "\n")
        assert login.returncode == 0, login.stderr
        upload = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "image", "upload", str(archive), "--chunk-size", "1"],
            env=_env(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not (gate / "started").exists():
                assert time.monotonic() < deadline, "the server never started finishing the import"
                assert upload.poll() is None, upload.communicate()
                time.sleep(0.05)
            ((holder,),) = sql(server, "SELECT holder FROM archive_uploads")
            os.kill(int(holder.rsplit(":", 2)[1]), signal.SIGKILL)  # host:pid:instance
            (gate / "open").touch()  # the next finishing goes through
            out, err = upload.communicate(timeout=300)
        finally:
            if upload.poll() is None:
                upload.kill()
                upload.wait()
        assert upload.returncode == 0, err
        assert "Traceback" not in err, err
        resent = re.search(rf"sending the archive again from byte (\d+) of {size}", err)
        assert resent is not None, err
        assert 0 <= int(resent[1]) < size
        assert f"Created {name}/tool:1" in out, out
        with oci_as(server, name, PASSWORD) as oci:
            manifest = oci.get_manifest(f"{name}/tool", "1").json()
            pulled = [oci.get_blob(f"{name}/tool", d["digest"]).content for d in manifest["layers"]]
        assert [gzip.decompress(layer) for layer in pulled] == layers
