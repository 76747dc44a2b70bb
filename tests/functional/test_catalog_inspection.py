"""Inspection of pushed images, on a Dockyard of its own (SQLite and PostgreSQL): it ends
after a crash with one restart, and measuring is bounded.

- The server is killed (SIGKILL) while an inspection is under way, held there by the
  server's test seam (``DOCKYARD_TEST_INSPECTION_GATE``: each inspection creates ``started``
  in a folder and waits for ``open``). After one restart the version must reach a final status.
- A zstd layer of 32 KiB that expands to 1 GiB (a decompression bomb, built by hand) goes past
  the per-layer bound set for the test: the version is available, its uncompressed size is
  null and a warning says which layer and why; a normal zstd layer is measured exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import zstandard

from tests.support.catalog import (
    ZSTD_LAYER,
    CatalogUser,
    gzip_layer,
    image_config,
    warning,
    warning_codes,
    zstd_zeros,
)
from tests.support.identity import ADMIN, ADMIN_PASSWORD, oci_as
from tests.support.oci import Blob, oci_manifest
from tests.support.servers import kill_hard, private_dockyard

TOKEN_MODE = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}
GATE_DEADLINE = 60.0


def wait_for_file(path: Path, deadline: float = GATE_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {deadline}s"
        time.sleep(0.05)


def test_an_inspection_killed_midway_ends_after_one_restart(db_kind: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {
        **TOKEN_MODE,
        "DOCKYARD_TEST_INSPECTION_GATE": str(gate),
        # Short leases, so that the dead server's hold on the inspection runs out quickly.
        "DOCKYARD_JOB_LEASE_SECONDS": "2",
        "DOCKYARD_JOB_RECOVER_SECONDS": "0.5",
    }
    config, layer = image_config("amd64"), gzip_layer("crash")
    manifest = oci_manifest(config, [layer])
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, restart):
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push("lab/crashy", manifest, "v1")
        wait_for_file(gate / "started")  # the inspection is under way, held at the gate
        with CatalogUser.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            assert admin.version("lab/crashy", "v1")["status"] == "pending"

        kill_hard(server)
        (gate / "open").touch()
        again = restart()

        with CatalogUser.connect(again, ADMIN, ADMIN_PASSWORD) as admin:
            version = admin.wait_inspected("lab/crashy", "v1", manifest.digest)
            assert version["status"] == "available", version
            assert version["platforms"] == ["linux/amd64"]
            assert version["compressed_size"] == config.size + layer.size
            history = [(e["kind"], e["detail"].get("status")) for e in admin.events("lab/crashy")]
            assert history == [("created", None), ("pushed", None), ("inspected", "available")]


def test_measuring_a_layer_is_bounded_and_says_what_was_not_measured(db_kind: str, tmp_path: Path) -> None:
    limit = 64 * 1024 * 1024
    env = {**TOKEN_MODE, "DOCKYARD_INSPECT_LAYER_MAX_BYTES": str(limit)}
    bomb = Blob(zstd_zeros(1024**3), ZSTD_LAYER)
    assert len(bomb.data) < 40 * 1024
    plain = b"a measured layer\n" * 60_000
    small = Blob(zstandard.ZstdCompressor().compress(plain), ZSTD_LAYER)
    bomb_config, small_config = image_config("amd64", label="bomb"), image_config("amd64", label="small")
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, _):
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push("lab/sizes", oci_manifest(bomb_config, [bomb]), "bomb")
            oci.push("lab/sizes", oci_manifest(small_config, [small]), "small")
        with CatalogUser.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            bombed = admin.wait_inspected("lab/sizes", "bomb")
            measured = admin.wait_inspected("lab/sizes", "small")

    assert bombed["status"] == "available"
    assert bombed["compressed_size"] == bomb_config.size + bomb.size
    assert bombed["uncompressed_size"] is None
    assert warning_codes(bombed) == ["uncompressed_size_unknown"]
    assert warning(bombed, "uncompressed_size_unknown") == (
        f"the uncompressed size is not measured: layer {bomb.digest} expands past 67,108,864 bytes, "
        "the limit per layer (DOCKYARD_INSPECT_LAYER_MAX_BYTES)"
    )
    assert measured["status"] == "available"
    assert measured["uncompressed_size"] == len(plain) + small_config.size
    assert measured["warnings"] == []
