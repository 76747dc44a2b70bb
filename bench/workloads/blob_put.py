"""Workload 2: PUT one large blob, monolithic and chunked, with the digest checked (MB/s).

Each upload is new content (the file's last 32 bytes change), so no registry can skip it."""

from __future__ import annotations

import os

from bench.registry_client import RegistryClient
from bench.servers import Server
from bench.workloads.base import Context

REPO = "bench/upload"


class BlobPut:
    name = "blob-put"
    phase = "blob_put"

    def prepare(self, ctx: Context, server: Server) -> None:
        return None

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        cfg, src = ctx.cfg, ctx.source
        with RegistryClient(server.port, cfg.http_timeout) as client:
            os.sync()  # earlier writes (either registry's) must not be flushed on this one's time
            digest = src.next_variant()
            mono = src.size / client.upload_monolithic(REPO, src.fd, src.size, digest)
            self._verify(client, digest, src.size)
            ctx.results.add("blob_put_mono", server.name, mono)
            os.sync()
            digest = src.next_variant()
            chunked = src.size / client.upload_chunked(REPO, src.fd, src.size, digest, cfg.chunk_size)
            self._verify(client, digest, src.size)
            ctx.results.add("blob_put_chunked", server.name, chunked)
        ctx.say(f"blob PUT monolithic {mono / 1e6:,.0f} MB/s, chunked {chunked / 1e6:,.0f} MB/s")

    @staticmethod
    def _verify(client: RegistryClient, digest: str, size: int) -> None:
        got = client.blob_size(REPO, digest)
        if got != size:
            raise RuntimeError(f"uploaded blob {digest} reads back as {got} bytes, not {size}")
