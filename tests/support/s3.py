"""A real S3 server for the tests: Ceph radosgw started (or reused) by ``scripts/ceph.sh``.

Never skipped: when the server cannot be started the tests fail with the script's message.
Each user of :func:`s3_config` gets its own key prefix in one shared bucket.
"""

from __future__ import annotations

import functools
import subprocess
import uuid
from pathlib import Path

from dockyard.storage.s3 import S3Config

REPO = Path(__file__).resolve().parents[2]
BUCKET = "dockyard-test"


@functools.cache
def s3_server() -> dict[str, str]:
    """Start radosgw once per test process; its ``DOCKYARD_S3_*`` settings."""
    done = subprocess.run(
        [str(REPO / "scripts" / "ceph.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/ceph.sh could not start Ceph radosgw:\n{done.stderr}{done.stdout}")
    settings = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return settings


def s3_config() -> S3Config:
    """Settings for the test bucket under a prefix of the caller's own (change others with
    ``dataclasses.replace``)."""
    server = s3_server()
    return S3Config(
        endpoint=server["DOCKYARD_S3_ENDPOINT"],
        bucket=BUCKET,
        access_key=server["DOCKYARD_S3_ACCESS_KEY"],
        secret_key=server["DOCKYARD_S3_SECRET_KEY"],
        prefix=f"t-{uuid.uuid4().hex[:12]}/",
        # the smallest part S3 allows, so the tests cross part boundaries with small data
        part_size=5 * 1024 * 1024,
    )


def s3_env() -> dict[str, str]:
    """``DOCKYARD_*`` settings that put a server's blobs in the test bucket, under a prefix of
    its own."""
    config = s3_config()
    return {
        "DOCKYARD_STORAGE_DRIVER": "s3",
        "DOCKYARD_S3_ENDPOINT": config.endpoint,
        "DOCKYARD_S3_BUCKET": config.bucket,
        "DOCKYARD_S3_ACCESS_KEY": config.access_key,
        "DOCKYARD_S3_SECRET_KEY": config.secret_key,
        "DOCKYARD_S3_PREFIX": config.prefix,
    }
