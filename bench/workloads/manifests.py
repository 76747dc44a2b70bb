"""Workload 3: manifest HEAD (hey) and GET (wrk) by tag, N connections for a fixed time."""

from __future__ import annotations

from bench import loadtools
from bench.limits import MACHINE, trivial_server
from bench.registry_client import OCI_MANIFEST, RegistryClient, small_image
from bench.servers import Server
from bench.workloads.base import Context

REPO = "bench/manifest"
TAG = "bench"
HEADERS = {"Accept": OCI_MANIFEST}


class Manifests:
    name = "manifest"
    phase = "manifest"

    def __init__(self) -> None:
        self.ceiling_url = ""
        self.ceiling_rounds: set[int] = set()

    def prepare(self, ctx: Context, server: Server) -> None:
        with RegistryClient(server.port, ctx.cfg.http_timeout) as client:
            _digest, size = small_image(client, REPO, TAG)
            resp = client.request("HEAD", f"/v2/{REPO}/manifests/{TAG}", HEADERS)
            if resp.status != 200 or int(resp.header("Content-Length") or 0) != size:
                raise RuntimeError(
                    f"HEAD manifest answered {resp.status}, Content-Length {resp.header('Content-Length')}"
                )

    def _ceiling(self, ctx: Context) -> None:
        """The load tools against a trivial server: what they can drive on these 2 cores."""
        if not self.ceiling_url:
            port = ctx.stack.enter_context(trivial_server("static"))
            self.ceiling_url = f"http://127.0.0.1:{port}/v2/{REPO}/manifests/{TAG}"
        cfg = ctx.cfg
        conns, secs = cfg.manifest_connections, cfg.tool_ceiling_seconds
        head = loadtools.hey_head(self.ceiling_url, HEADERS, conns, secs)
        get = loadtools.wrk_get(self.ceiling_url, HEADERS, conns, secs)
        ctx.results.add("head_ceiling", MACHINE, head.rps)
        ctx.results.add("get_manifest_ceiling", MACHINE, get.rps)
        ctx.note(
            f"ceiling   manifest HEAD (hey) {head.rps:,.0f} req/s, GET (wrk) {get.rps:,.0f} req/s "
            f"(trivial server, {secs} s)"
        )

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        if round_no not in self.ceiling_rounds:
            self.ceiling_rounds.add(round_no)
            self._ceiling(ctx)
        cfg = ctx.cfg
        url = f"{server.url}/v2/{REPO}/manifests/{TAG}"
        for method, tool in (("head", loadtools.hey_head), ("get", loadtools.wrk_get)):
            res = tool(url, HEADERS, cfg.manifest_connections, cfg.manifest_seconds)
            if res.requests == 0 or res.errors > res.requests // 100:
                raise RuntimeError(
                    f"manifest {method.upper()} ({res.tool}): {res.errors} errors in {res.requests} requests"
                )
            extra = res.as_dict()
            ctx.results.add(f"manifest_{method}_rps", server.name, res.rps, **extra)
            ctx.results.add(f"manifest_{method}_p50", server.name, res.p50_ms)
            ctx.results.add(f"manifest_{method}_p99", server.name, res.p99_ms)
            ctx.say(
                f"manifest {method.upper()} ({res.tool}) {res.rps:,.0f} req/s, p50 {res.p50_ms:.1f} ms, "
                f"p99 {res.p99_ms:.1f} ms, {res.errors} errors"
            )
