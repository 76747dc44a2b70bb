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

from tests.support.archives import SavedImage, docker_save, docker_save_with, entry, oci_archive, random_layer
from tests.support.catalog import CatalogUser, new_user
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.servers import RunningRegistry

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
