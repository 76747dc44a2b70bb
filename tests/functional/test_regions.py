"""Regions (SQLite and PostgreSQL): a version pushed to ``eu`` (the default region, a folder) is
copied to ``us`` (a second folder) by a job, pulled from a replica in ``us`` (the response names
the region that served it), then removed from ``eu`` and still pulled; its last region cannot be
removed; a copy stopped half-way (the server killed at the test seam) resumes after a restart;
blobs a region holds already are not copied again."""

from __future__ import annotations

from pathlib import Path

from tests.support.catalog import CatalogUser, gzip_layer, image_config
from tests.support.cli import Cli
from tests.support.identity import ADMIN, ADMIN_PASSWORD, oci_as
from tests.support.oci import oci_manifest
from tests.support.regions import (
    assert_served,
    blob_file,
    folder,
    region_env,
    regions_of,
    replica_in,
    wait_available,
    wait_for_file,
)
from tests.support.servers import kill_hard, private_dockyard


def test_a_version_copied_to_us_is_served_there_and_outlives_eu(db_kind: str, tmp_path: Path) -> None:
    us_root = tmp_path / "us"
    env = region_env(folder(us_root))
    config, layers = image_config("amd64"), [gzip_layer("first"), gzip_layer("second")]
    manifest = oci_manifest(config, layers)
    shared_config = image_config("amd64")
    shared = oci_manifest(shared_config, [layers[0]])
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, _):
        eu_root = server.data_dir / "storage"
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push("lab/tool", manifest, "v1")
            oci.push("lab/tool", shared, "v2")
            assert oci.get_blob("lab/tool", layers[0].digest).headers["Dockyard-Region"] == "eu"
        with CatalogUser.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            admin.wait_inspected("lab/tool", "v1")
            admin.wait_inspected("lab/tool", "v2")
            assert list(regions_of(admin, "lab/tool", "v1")) == ["eu"]
            admin.api.call("POST", "/images/lab/tool/versions/v1/regions", 202, json={"region": "us"})
            done = wait_available(admin, "lab/tool", "v1", "us")
            assert (done["blobs_done"], done["blobs_total"]) == (3, 3)
            assert done["bytes_done"] == done["bytes_total"] == config.size + sum(b.size for b in layers)
            for blob in (config, *layers):
                assert blob_file(us_root, blob.digest).read_bytes() == blob.data
            assert admin.version("lab/tool", "v1")["regions"] == ["eu", "us"]
            # dedupe: v2's layer is in us already; only its config is copied
            copied_at = blob_file(us_root, layers[0].digest).stat().st_mtime_ns
            cli = Cli(server, tmp_path / "cli.toml")
            cli.ok("login", server.url, "-u", ADMIN, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
            added = cli.json("image", "region", "add", "lab/tool:v2", "us")  # follows the copy
            assert {r["region"]: r["status"] for r in added["regions"]} == {
                "eu": "available",
                "us": "available",
            }
            assert blob_file(us_root, layers[0].digest).stat().st_mtime_ns == copied_at
            usage = {r["name"]: r for r in admin.api.call("GET", "/regions")}
            assert usage["us"]["bytes"] == config.size + sum(b.size for b in layers) + shared_config.size
            assert usage["eu"]["default"]
            assert not usage["us"]["default"]
        server.stop()

        with replica_in("us", server, env) as (oci, admin):
            assert_served(oci, "lab/tool", [layers[1]], "us")

            admin.api.call("DELETE", "/images/lab/tool/versions/v1/regions/eu")
            assert list(regions_of(admin, "lab/tool", "v1")) == ["us"]
            assert admin.version("lab/tool", "v1")["regions"] == ["us"]  # the old field follows
            assert not blob_file(eu_root, layers[1].digest).exists()  # v1's alone: gone from eu
            assert blob_file(eu_root, layers[0].digest).exists()  # v2 still needs it in eu
            assert_served(oci, "lab/tool", [config, *layers], "us")
            archive = admin.http.get("/images/lab/tool/versions/v1/archive", params={"format": "oci"})
            assert archive.status_code == 200, archive.text[:300]  # downloads read from us too

            cli = Cli(admin.registry, tmp_path / "cli-us.toml")
            cli.ok("login", admin.registry.url, "-u", ADMIN, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
            assert "us" in cli.ok("image", "region", "list", "lab/tool:v1")
            assert "last region" in cli.fails("image", "region", "remove", "lab/tool:v1", "us").stderr
            refused = admin.http.delete("/images/lab/tool/versions/v1/regions/us")
            assert refused.status_code == 409, refused.text
            assert refused.headers["Content-Type"].startswith("application/problem+json")
            assert "last region" in refused.json()["detail"]


def test_a_copy_stopped_half_way_resumes_after_a_restart(db_kind: str, tmp_path: Path) -> None:
    gate, us_root = tmp_path / "gate", tmp_path / "us"
    gate.mkdir()
    env = region_env(
        folder(us_root),
        DOCKYARD_TEST_REGION_GATE=str(gate),
        DOCKYARD_JOB_LEASE_SECONDS="2",
        DOCKYARD_JOB_RECOVER_SECONDS="0.5",
    )
    config, layers = image_config("amd64"), [gzip_layer(f"layer {n}") for n in range(3)]
    manifest = oci_manifest(config, layers)
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, restart):
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push("lab/big", manifest, "v1")
        with CatalogUser.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            admin.wait_inspected("lab/big", "v1")
            admin.api.call("POST", "/images/lab/big/versions/v1/regions", 202, json={"region": "us"})
            wait_for_file(gate / "started")  # one blob copied, the job held at the seam
            halfway = regions_of(admin, "lab/big", "v1")["us"]
            assert (halfway["status"], halfway["blobs_done"]) == ("copying", 1), halfway

        kill_hard(server)
        (gate / "open").touch()
        again = restart()
        with CatalogUser.connect(again, ADMIN, ADMIN_PASSWORD) as admin:
            done = wait_available(admin, "lab/big", "v1", "us")
            assert (done["blobs_done"], done["blobs_total"]) == (4, 4)
            for blob in (config, *layers):
                assert blob_file(us_root, blob.digest).read_bytes() == blob.data
