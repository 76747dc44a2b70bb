"""The S3 workload's region-copy row (issue #15): how fast Dockyard copies a version from a
folder region to an S3 bucket region, beside the bucket's raw PUT (the same radosgw).

Its own token-mode Dockyard (``s3lab.start_region_server``): ``eu`` the default region (a
folder: pushes land there), ``us`` a prefix of a bucket. Once per round, in Dockyard's turn:

1. untimed: a fresh one-layer image (the run's blob, ``blob_size``: 1 GiB, a new digest) pushed
   through ``/v2`` as the blob rows push (monolithic ``sendfile`` PUT, Bearer token), then the
   catalog's inspection and package scan waited for (they read the layer: not under the copy);
2. timed: from ``POST /api/v1/images/{name}/versions/{v}/regions {"region": "us"}`` (the copy is
   a ``regions.copy`` job) until ``GET .../regions`` reports ``us`` available, polled every
   50 ms; MB/s = the bytes the copy reports done ÷ those seconds;
3. untimed: the version removed from ``us`` again (``DELETE .../regions/us``: its blobs are
   deleted from the bucket, ``eu`` holds them), the bucket emptied and radosgw's garbage
   collected (the memstore OSD keeps 3 GiB in RAM).

There is no reference figure (the reference registry has no regions): the machine limit
column shows the bucket's raw PUT, and the detail the copy's share of it.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any
from urllib.parse import quote

from bench.api_client import ApiClient
from bench.limits import MACHINE
from bench.registry_client import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, RegistryClient, RegistryError
from bench.s3lab import REGION_BUCKET, WORKSPACE, admin_creds, collect_garbage, empty_bucket
from bench.servers import DOCKYARD, Server
from bench.workloads.base import Context
from bench.workloads.pull_cache import wait_inspected

IMAGE = f"{WORKSPACE}/region-copy"
TARGET = "us"
POLL_S = 0.05


def bearer_token(server: Server, repo: str, timeout: float) -> str:
    """A push and pull token for ``repo`` (the admin's, via ``/auth/token``)."""
    basic = base64.b64encode(admin_creds().encode()).decode()
    with RegistryClient(server.port, timeout) as anon:
        challenge = anon.request("GET", "/v2/").header("WWW-Authenticate")
    service = challenge.split('service="', 1)[1].split('"', 1)[0]
    path = f"/auth/token?service={quote(service)}&scope=repository:{repo}:pull,push"
    with RegistryClient(server.port, timeout, f"Basic {basic}") as client:
        resp = client.request("GET", path)
    if resp.status != 200:
        raise RuntimeError(f"/auth/token answered {resp.status}: {resp.body[:300]!r}")
    return str(json.loads(resp.body)["token"])


def region_round(ctx: Context, server: Server, s3: Any, round_no: int) -> None:
    """One round of the row on the regions server ``server`` (``s3``: boto3 for the clean-up)."""
    creds = server.credentials
    if creds is None:
        raise RuntimeError(f"{server.name} does not run in token mode")
    version = f"r{round_no}"
    layer = _push(ctx, server, version)
    waited = wait_inspected(ctx, server, [f"{server.host}/{IMAGE}:{version}"])
    path = f"/images/{quote(IMAGE)}/versions/{version}/regions"
    with ApiClient(server.port, creds, ctx.cfg.http_timeout) as api:
        api.wait_packages(IMAGE, version, ctx.cfg.available_timeout)
        os.sync()  # the push's dirty pages are not flushed on the copy's time
        seconds, done = _timed_copy(ctx, api, path)
        api.call("DELETE", f"{path}/{TARGET}")
    removed = empty_bucket(s3, REGION_BUCKET)
    collect_garbage()
    copied = int(done["bytes_done"])
    raw_put = ctx.results.samples["s3_raw_put"][MACHINE]  # this round's is the last
    ctx.results.add(
        "s3_region_copy",
        DOCKYARD,
        copied / seconds,
        bytes=copied,
        layer_bytes=layer,
        blobs=int(done["blobs_done"]),
        seconds=seconds,
        of_raw_put=copied / seconds / raw_put[-1] if raw_put else None,
    )
    ctx.note(
        f"region copy eu -> {TARGET} {copied / 1e6:,.0f} MB ({done['blobs_done']} blobs) in "
        f"{seconds:.2f} s: {copied / seconds / 1e6:,.0f} MB/s ({waited}, packages read, untimed; "
        f"{removed} objects left in the bucket after removing the region)"
    )


def _push(ctx: Context, server: Server, tag: str) -> int:
    """A one-layer OCI image: the run's blob (a new digest) as an uncompressed layer; its size."""
    src, timeout = ctx.source, ctx.cfg.http_timeout
    auth = f"Bearer {bearer_token(server, IMAGE, timeout)}"
    with RegistryClient(server.port, timeout, auth) as client:
        digest = src.next_variant()
        client.upload_monolithic(IMAGE, src.fd, src.size, digest)
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}}
        ).encode()
        config_digest = client.push_bytes(IMAGE, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest, "size": src.size}],
        }
        client.put_manifest(IMAGE, tag, json.dumps(manifest).encode())
    return src.size


def _timed_copy(ctx: Context, api: ApiClient, path: str) -> tuple[float, dict[str, Any]]:
    """Seconds from the add to ``us`` available, and the region's final row (its progress)."""
    start = time.perf_counter()
    api.call("POST", path, {"region": TARGET}, expect=(202,))
    while True:
        found = {r["region"]: r for r in api.call("GET", path)["regions"]}
        row = found.get(TARGET)
        if row is not None and row["status"] == "available":
            seconds = time.perf_counter() - start
            break
        if row is None or row["status"] not in ("copying", "available"):
            raise RegistryError(f"region {TARGET} of {IMAGE}: {row}")
        if time.perf_counter() - start > ctx.cfg.http_timeout:
            raise RegistryError(
                f"region {TARGET} of {IMAGE} not available after {ctx.cfg.http_timeout:.0f}s: {row}"
            )
        time.sleep(POLL_S)
    if (row["bytes_done"], row["blobs_done"]) != (row["bytes_total"], row["blobs_total"]):
        raise RegistryError(f"region {TARGET} available with a partial copy: {row}")
    return seconds, row
