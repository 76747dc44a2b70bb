"""Workload 1: GET one large blob with 1 and N concurrent curl clients (MB/s)."""

from __future__ import annotations

from bench import loadtools
from bench.limits import MACHINE, trivial_server
from bench.registry_client import RegistryClient
from bench.servers import Server
from bench.workloads.base import Context

REPO = "bench/blob"


class BlobGet:
    name = "blob-get"
    phase = "blob_get"

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self.ceiling_url = ""
        self.ceiling_rounds: set[int] = set()

    def prepare(self, ctx: Context, server: Server) -> None:
        with RegistryClient(server.port, ctx.cfg.http_timeout) as client:
            digest = ctx.source.digest
            client.upload_monolithic(REPO, ctx.source.fd, ctx.source.size, digest)
            if client.blob_size(REPO, digest) != ctx.source.size:
                raise RuntimeError("blob size differs after upload")
        self.digests[server.name] = digest
        loadtools.curl_get(self._url(server), ctx.source.size, 1, 1, ctx.cfg.http_timeout)  # warm the cache

    def _url(self, server: Server) -> str:
        return f"{server.url}/v2/{REPO}/blobs/{self.digests[server.name]}"

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        if round_no not in self.ceiling_rounds:  # once per round, in the same time window
            self.ceiling_rounds.add(round_no)
            if not self.ceiling_url:
                port = ctx.stack.enter_context(trivial_server("sendfile", str(ctx.source.path)))
                self.ceiling_url = f"http://127.0.0.1:{port}/blob"
                loadtools.curl_get(self.ceiling_url, ctx.source.size, 1, 1, ctx.cfg.http_timeout)
            self._measure(ctx, self.ceiling_url, MACHINE, "get_ceiling_1", "get_ceiling_n")
        self._measure(ctx, self._url(server), server.name, "blob_get_1", "blob_get_n")

    def _measure(self, ctx: Context, url: str, name: str, key_one: str, key_many: str) -> None:
        cfg = ctx.cfg
        one = loadtools.curl_get(url, ctx.source.size, 1, cfg.get_repeats, cfg.http_timeout)
        ctx.results.add(key_one, name, one)
        many = loadtools.curl_get(url, ctx.source.size, cfg.get_clients, 1, cfg.http_timeout)
        ctx.results.add(key_many, name, many)
        n = cfg.get_clients
        text = f"blob GET 1 client {one / 1e6:,.0f} MB/s, {n} clients {many / 1e6:,.0f} MB/s"
        if name == MACHINE:
            ctx.note(f"ceiling   {text} (curl vs trivial sendfile server)")
        else:
            ctx.say(text)
