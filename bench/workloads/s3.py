"""Workload ``s3`` (only when asked: ``--s3`` or ``--only s3``): both registries storing on the
same Ceph radosgw, each in a bucket of its own.

Per round and registry (the order alternating as for the other workloads): a skopeo push and
pull of a fresh image (the image workload's layout), then, once the catalog has inspected it
(untimed, so the inspection does not run under a measurement), a monolithic blob PUT of a new
1 GiB blob and GETs of that blob with curl. Then the registry's bucket is emptied and radosgw's
garbage collected (untimed): the memstore OSD holds 3 GiB in RAM.

Once per round, before the first registry's turn: the bucket raw rows, ``PutObject`` of the
same 1 GiB with boto3 (configured as Dockyard's driver) and a curl GET of it through a
presigned URL: the ceilings beside the registries' rows.

At the end of Dockyard's turn, the region-copy row (Dockyard only, ``s3_region.py``): a version
of ``blob_size`` copied from a folder region to a bucket region on a Dockyard of its own.

Dockyard runs in token mode (as its users run it): skopeo gets a Bearer token with the admin's
credentials, the blob rows send a Bearer token fetched (untimed) from ``/auth/token``. The
reference runs without auth, as in every other row (it has no token server here).
"""

from __future__ import annotations

import shutil
from typing import Any

from bench import loadtools
from bench.api_client import ApiClient
from bench.limits import MACHINE
from bench.registry_client import RegistryClient
from bench.s3lab import (
    BUCKETS,
    RAW_BUCKET,
    REGION_BUCKET,
    WORKSPACE,
    S3Endpoint,
    admin_creds,
    ceph,
    collect_garbage,
    empty_bucket,
    presigned_get,
    raw_put,
    s3_client,
    start_region_server,
    start_servers,
)
from bench.servers import DOCKYARD, Server
from bench.workloads.base import Context
from bench.workloads.image import push_and_pull
from bench.workloads.pull_cache import wait_inspected
from bench.workloads.s3_region import bearer_token, region_round

BLOB_REPO = f"{WORKSPACE}/s3-blob"


class S3Rows:
    name = "s3"
    phase = "s3"

    def __init__(self) -> None:
        self.endpoint: S3Endpoint | None = None
        self.client: Any = None
        self.servers: dict[str, Server] = {}
        self.regions: Server | None = None  # the region-copy row's Dockyard (eu folder, us bucket)
        self.raw_rounds: set[int] = set()
        self.setup_error = ""

    def _setup(self, ctx: Context) -> None:
        if self.setup_error:
            raise RuntimeError(f"S3 set-up failed: {self.setup_error}")
        if self.endpoint is not None:
            return
        try:
            self.endpoint = ctx.stack.enter_context(ceph(ctx.note))
            self.client = s3_client(self.endpoint)
            self.servers = start_servers(ctx.tmp, self.endpoint, ctx.stack)
            regions = self.regions = start_region_server(ctx.tmp, self.endpoint, ctx.stack)
        except Exception as exc:  # the other registry's turn must not try again
            self.setup_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            raise
        for slot, server in self.servers.items():
            bucket = BUCKETS[slot]
            ctx.note(f"{slot}-s3: {server.kind} on bucket {bucket} (pid {server.pid}, {server.url})")
        ctx.note(
            f"{regions.name}: regions eu (folder, default) and us (bucket {REGION_BUCKET}) ({regions.url})"
        )
        for dockyard in (self.servers["dockyard"], regions):
            assert dockyard.credentials is not None
            with ApiClient(dockyard.port, dockyard.credentials, ctx.cfg.http_timeout) as api:
                api.create_workspace(WORKSPACE)

    def prepare(self, ctx: Context, server: Server) -> None:
        loadtools.require("skopeo", "skopeo")
        loadtools.require("curl", "curl")
        if shutil.which("radosgw") is None:
            raise RuntimeError("Ceph is not installed: run scripts/setup.sh test as root")
        self._setup(ctx)

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        if round_no not in self.raw_rounds:  # once per round, in the same time window
            self.raw_rounds.add(round_no)
            self._raw(ctx)
        target = self.servers[server.name]
        creds = admin_creds() if target.credentials else ""
        work = ctx.tmp / f"s3-image-{server.name}-{round_no}"
        push, pull, size, ref = push_and_pull(ctx, work, f"{target.host}/{WORKSPACE}/image-{round_no}", creds)
        ctx.results.add("s3_image_push_s", server.name, push, bytes=size)
        ctx.results.add("s3_image_pull_s", server.name, pull)
        ctx.results.add("s3_image_total_s", server.name, push + pull)
        inspected = wait_inspected(ctx, target, [ref]) if creds else ""
        put, get = self._blob(ctx, target)
        ctx.results.add("s3_blob_put_mono", server.name, put)
        ctx.results.add("s3_blob_get_1", server.name, get)
        removed = empty_bucket(self.client, BUCKETS[server.name])
        collect_garbage()
        ctx.say(
            f"S3 image {size / 1e6:,.0f} MB push {push:.2f} s, pull {pull:.2f} s; blob PUT "
            f"{put / 1e6:,.0f} MB/s, GET {get / 1e6:,.0f} MB/s ({inspected or 'no catalog'}; "
            f"{removed} objects removed after)"
        )
        if server.name == DOCKYARD and self.regions is not None:  # Dockyard only: once per round
            region_round(ctx, self.regions, self.client, round_no)

    def _blob(self, ctx: Context, target: Server) -> tuple[float, float]:
        """A new blob PUT (monolithic, ``sendfile``) and read back with curl; bytes/s of each."""
        cfg, src = ctx.cfg, ctx.source
        auth = f"Bearer {bearer_token(target, BLOB_REPO, cfg.http_timeout)}" if target.credentials else ""
        with RegistryClient(target.port, cfg.http_timeout, auth) as client:
            digest = src.next_variant()
            put = src.size / client.upload_monolithic(BLOB_REPO, src.fd, src.size, digest)
            if client.blob_size(BLOB_REPO, digest) != src.size:
                raise RuntimeError(f"blob {digest} reads back with another size than {src.size}")
        headers = {"Authorization": auth} if auth else {}
        url = f"{target.url}/v2/{BLOB_REPO}/blobs/{digest}"
        get = loadtools.curl_get(url, src.size, 1, cfg.get_repeats, cfg.http_timeout, headers)
        return put, get

    def _raw(self, ctx: Context) -> None:
        """The bucket itself: 1 GiB ``PutObject`` (boto3) and a curl GET of it (presigned)."""
        src, cfg = ctx.source, ctx.cfg
        key = "raw/blob"
        with src.path.open("rb") as body:
            put = raw_put(self.client, RAW_BUCKET, key, body, src.size)
        url = presigned_get(self.client, RAW_BUCKET, key)
        get = loadtools.curl_get(url, src.size, 1, cfg.get_repeats, cfg.http_timeout)
        ctx.results.add("s3_raw_put", MACHINE, put)
        ctx.results.add("s3_raw_get", MACHINE, get)
        empty_bucket(self.client, RAW_BUCKET)
        collect_garbage()
        ctx.note(f"bucket raw PUT {put / 1e6:,.0f} MB/s (boto3 put_object), GET {get / 1e6:,.0f} MB/s (curl)")
