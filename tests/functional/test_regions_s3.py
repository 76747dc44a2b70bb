"""A region on S3 (Ceph radosgw, started by ``scripts/ceph.sh``; SQLite and PostgreSQL): a version
pushed to ``eu`` (a folder) is copied to ``us`` (a bucket), then served by a replica in ``us``
from the bucket, also once ``eu`` is removed."""

from __future__ import annotations

from pathlib import Path

from tests.support.catalog import CatalogUser, gzip_layer, image_config
from tests.support.identity import ADMIN, ADMIN_PASSWORD, oci_as
from tests.support.oci import oci_manifest
from tests.support.regions import assert_served, region_env, regions_of, replica_in, wait_available
from tests.support.s3 import s3_config
from tests.support.servers import private_dockyard


def test_a_version_copied_to_a_bucket_is_served_from_it(db_kind: str, tmp_path: Path) -> None:
    bucket = s3_config()
    us = {
        "driver": "s3",
        "endpoint": bucket.endpoint,
        "bucket": bucket.bucket,
        "access_key": bucket.access_key,
        "secret_key": bucket.secret_key,
        "prefix": bucket.prefix,
    }
    env = region_env(us)
    config, layers = image_config("amd64"), [gzip_layer("on s3", repeat=50_000), gzip_layer("small")]
    manifest = oci_manifest(config, layers)
    with private_dockyard(db_kind, tmp_path / "server", env) as (server, _):
        with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push("lab/s3tool", manifest, "v1")
        with CatalogUser.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            admin.wait_inspected("lab/s3tool", "v1")
            admin.api.call("POST", "/images/lab/s3tool/versions/v1/regions", 202, json={"region": "us"})
            done = wait_available(admin, "lab/s3tool", "v1", "us")
            assert (done["blobs_done"], done["blobs_total"]) == (3, 3)
        server.stop()

        with replica_in("us", server, env) as (oci, admin):
            admin.api.call("DELETE", "/images/lab/s3tool/versions/v1/regions/eu")
            assert list(regions_of(admin, "lab/s3tool", "v1")) == ["us"]
            assert_served(oci, "lab/s3tool", [config, *layers], "us")
