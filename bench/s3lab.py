"""The S3 rows' ground: Ceph radosgw (``scripts/ceph.sh``), a bucket per registry, both
registries storing there, and the bucket itself reached with boto3 (the raw ceiling, clean-up).

``ceph`` starts radosgw through the project's script and stops it at the end, also on failure,
unless it already answered before the run (``scripts/test.sh`` starts it for its S3 stage and
other tests of the same session still need it): then it is left running, as found.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import botocore.config
import botocore.exceptions

from bench.servers import ADMIN_PASSWORD, ADMIN_USERNAME, REPO_ROOT, Server, start_dockyard, start_reference

CEPH_SCRIPT = REPO_ROOT / "scripts" / "ceph.sh"
REGION = "us-east-1"
BUCKETS = {"dockyard": "bench-dockyard", "reference": "bench-reference"}
RAW_BUCKET = "bench-raw"
REGION_BUCKET, REGION_PREFIX = "bench-regions", "us/"  # the region-copy row's region ``us``
WORKSPACE = "bench"  # the token-mode Dockyard's workspace for the S3 rows


@dataclass(frozen=True)
class S3Endpoint:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str


def _ceph_port() -> int:
    return int(os.environ.get("DOCKYARD_CEPH_PORT") or 17580)


def radosgw_answers() -> bool:
    """Whether something answers HTTP on radosgw's port (``DOCKYARD_CEPH_PORT``)."""
    conn = http.client.HTTPConnection("127.0.0.1", _ceph_port(), timeout=5)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def ceph_conf() -> Path:
    state = os.environ.get("DOCKYARD_CEPH_DIR") or str(REPO_ROOT / ".cache" / "ceph")
    return Path(state) / "ceph.conf"


@contextlib.contextmanager
def ceph(say: Callable[[str], None]) -> Iterator[S3Endpoint]:
    """radosgw on loopback for the block; stopped after it unless it was running before."""
    found_running = radosgw_answers()
    try:
        started = time.perf_counter()
        done = subprocess.run([str(CEPH_SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/ceph.sh could not start radosgw:\n{done.stderr[-2000:]}")
        settings = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        what = "reused (running before the run: left running)" if found_running else "started"
        took = time.perf_counter() - started
        say(f"ceph radosgw {what}: {settings['DOCKYARD_S3_ENDPOINT']} ({took:.0f} s)")
        yield S3Endpoint(
            settings["DOCKYARD_S3_ENDPOINT"],
            settings["DOCKYARD_S3_ACCESS_KEY"],
            settings["DOCKYARD_S3_SECRET_KEY"],
        )
    finally:
        if not found_running:
            subprocess.run([str(CEPH_SCRIPT), "stop"], capture_output=True, timeout=120, check=False)
            say("ceph stopped (scripts/ceph.sh stop)")


def s3_client(ep: S3Endpoint) -> Any:
    """boto3 as Dockyard's S3 driver configures it (path style, SigV4, no extra checksums)."""
    session = boto3.session.Session(
        aws_access_key_id=ep.access_key, aws_secret_access_key=ep.secret_key, region_name=REGION
    )
    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": 5, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=ep.endpoint, config=config)


def ensure_bucket(client: Any, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)


def empty_bucket(client: Any, bucket: str) -> int:
    """Delete every object and open multipart upload in ``bucket``; how many objects went."""
    removed = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            removed += len(keys)
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return removed


def collect_garbage() -> None:
    """Give deleted objects' RAM back to the memstore OSD now (radosgw's gc would wait seconds):
    the next measurement must not run short of the OSD's 3 GiB."""
    env = dict(os.environ, CEPH_CONF=str(ceph_conf()))
    done = subprocess.run(
        ["radosgw-admin", "gc", "process", "--include-all"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"radosgw-admin gc process failed: {done.stderr.strip()[-500:]}")


def raw_put(client: Any, bucket: str, key: str, body: BinaryIO, size: int) -> float:
    """One ``PutObject`` of ``size`` bytes of ``body`` (from its start); bytes/s."""
    body.seek(0)
    started = time.perf_counter()
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=size)
    return size / (time.perf_counter() - started)


def presigned_get(client: Any, bucket: str, key: str) -> str:
    params = {"Bucket": bucket, "Key": key}
    url: str = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
    return url


def reference_storage(ep: S3Endpoint, bucket: str) -> str:
    """Distribution's own ``s3`` driver on the same radosgw; redirects off, so blob GETs stream
    through the registry as Dockyard's do (its default, ``DOCKYARD_S3_REDIRECT=false``)."""
    return (
        "  s3:\n"
        f"    regionendpoint: {ep.endpoint}\n"
        f"    bucket: {bucket}\n"
        f"    accesskey: {ep.access_key}\n"
        f"    secretkey: {ep.secret_key}\n"
        f"    region: {REGION}\n"
        "    secure: false\n"
        "    v4auth: true\n"
        "  redirect:\n"
        "    disable: true\n"
    )


def dockyard_storage(ep: S3Endpoint, bucket: str) -> dict[str, str]:
    return {
        "DOCKYARD_STORAGE_DRIVER": "s3",
        "DOCKYARD_S3_ENDPOINT": ep.endpoint,
        "DOCKYARD_S3_BUCKET": bucket,
        "DOCKYARD_S3_ACCESS_KEY": ep.access_key,
        "DOCKYARD_S3_SECRET_KEY": ep.secret_key,
        "DOCKYARD_S3_REGION": REGION,
    }


def start_servers(base: Path, ep: S3Endpoint, stack: contextlib.ExitStack) -> dict[str, Server]:
    """Dockyard in token mode (as its users run it) and the reference, each on its own bucket;
    both are stopped when ``stack`` closes."""
    client = s3_client(ep)
    for bucket in (*BUCKETS.values(), RAW_BUCKET, REGION_BUCKET):
        ensure_bucket(client, bucket)
        empty_bucket(client, bucket)  # a reused radosgw may hold an earlier run's objects
    dockyard = start_dockyard(
        base / "dockyard-s3", "dockyard", token_mode=True, extra_env=dockyard_storage(ep, BUCKETS["dockyard"])
    )
    stack.callback(dockyard.stop)
    reference = start_reference(base / "reference-s3", storage=reference_storage(ep, BUCKETS["reference"]))
    stack.callback(reference.stop)
    return {dockyard.name: dockyard, reference.name: reference}


def region_settings(ep: S3Endpoint) -> dict[str, str]:
    """Two regions: ``eu``, the default (the storage settings' folder in the data dir: pushes
    land there), and ``us``, a prefix of ``REGION_BUCKET`` (``DOCKYARD_REGIONS``; the default
    region is never named there, the settings refuse it)."""
    us = {
        "driver": "s3",
        "endpoint": ep.endpoint,
        "bucket": REGION_BUCKET,
        "prefix": REGION_PREFIX,
        "access_key": ep.access_key,
        "secret_key": ep.secret_key,
        "region": REGION,
    }
    return {"DOCKYARD_DEFAULT_REGION": "eu", "DOCKYARD_REGIONS": json.dumps({"us": us})}


def start_region_server(base: Path, ep: S3Endpoint, stack: contextlib.ExitStack) -> Server:
    """Dockyard in token mode (regions are changed through ``/api/v1``) with regions ``eu`` (a
    folder) and ``us`` (the bucket): the region-copy row's; stopped when ``stack`` closes."""
    server = start_dockyard(
        base / "dockyard-regions", "dockyard-regions", token_mode=True, extra_env=region_settings(ep)
    )
    stack.callback(server.stop)
    return server


def admin_creds() -> str:
    return f"{ADMIN_USERNAME}:{ADMIN_PASSWORD}"
