"""Workload 8: pulls through a pull-through cache, cold and warm (issue #16), skopeo to ``dir:``.

The upstream is a plain Debian ``docker-registry`` of the lab's own, started at the first
round. Each slot pulls through its kind of cache:

- Dockyard: the token-mode Dockyard the archive workloads use (a cache is a workspace, and
  workspaces need users; it may reach loopback addresses), pulled as
  ``<cache ws>/127.0.0.1_<port>/<path>:<tag>`` with the admin's credentials (skopeo does the
  token dance: ``/v2/`` 401, ``/auth/token`` with Basic, then Bearer). A new cache workspace
  every round, with the default revalidation time (600 s).
- the reference: ``docker-registry`` with ``proxy.remoteurl`` set to the upstream (it asks the
  upstream for a tag on every manifest pull, as Distribution 2.8 does in proxy mode).

Each round, on fresh layers (a new OCI layout pushed to the upstream, untimed, so no cache,
store or skopeo has any of them), two timed pairs, their order alternating between rounds:

1. **cold**: the image straight from the upstream, and through the cache for the first time;
   the row is their ratio (target ≤1.15x: a first pull must not be much slower than going to
   the upstream yourself);
2. **warm**: through the cache again, and a direct pull of the same image from a registry that
   holds it as pushed: for Dockyard the layout pushed (untimed) into an ordinary workspace of
   the same server, for the reference the upstream itself (a plain ``docker-registry``); the
   row is their ratio (target ≤1.05x).

Between the two pairs the run waits, untimed, for Dockyard's catalog to inspect both versions
(it reads every layer once): that must not run during the warm pair.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from bench.api_client import ApiClient
from bench.data import Layout, build_layout
from bench.loadtools import require
from bench.registry_client import RegistryError
from bench.servers import Server, start_reference
from bench.workloads.base import Context
from bench.workloads.image import skopeo_copy

UPSTREAM = "upstream"
DIRECT_WORKSPACE = "direct"
TLS_SRC, TLS_DEST = "--src-tls-verify=false", "--dest-tls-verify=false"


@dataclass
class Cache:
    """A registry to pull from (a pull-through cache, or the upstream itself) and how."""

    server: Server
    kind: str  # "dockyard" or "docker-registry"
    creds: list[str] = field(default_factory=list)  # skopeo --src-creds, or --src-no-creds

    def timed_pull(self, ctx: Context, ref: str, dest: Path, layers: int) -> float:
        seconds = skopeo_copy(ctx, TLS_SRC, *self.creds, f"docker://{ref}", f"dir:{dest}")
        _check_pulled(dest, layers)
        shutil.rmtree(dest, ignore_errors=True)
        return seconds


@dataclass
class CacheLab:
    """The upstream and one cache per slot, started when first needed (stopped with the run).

    Dockyard's cache is the token-mode server the archive workloads use (``ArchiveLab``), which
    may reach loopback addresses (``DOCKYARD_OUTBOUND_ALLOW``): one server start less."""

    token_server: Callable[[Context], Server]
    upstream: Server | None = None
    caches: dict[str, Cache] = field(default_factory=dict)

    def upstream_server(self, ctx: Context) -> Server:
        if self.upstream is None:
            server = start_reference(ctx.tmp / "cache-upstream", name=UPSTREAM)
            ctx.stack.callback(server.stop)
            ctx.note(f"{UPSTREAM}: docker-registry, the caches' upstream (pid {server.pid}, {server.url})")
            self.upstream = server
        return self.upstream

    def cache_for(self, ctx: Context, slot: Server) -> Cache:
        if slot.name in self.caches:
            return self.caches[slot.name]
        upstream = self.upstream_server(ctx)
        if slot.kind == "dockyard":
            server = self.token_server(ctx)
            creds = server.credentials
            if creds is None:
                raise RuntimeError(f"{server.name} does not run in token mode")
            with ApiClient(server.port, creds, ctx.cfg.http_timeout) as api:
                api.create_workspace(DIRECT_WORKSPACE)
            cache = Cache(server, "dockyard", ["--src-creds", f"{creds[0]}:{creds[1]}"])
        else:
            name = f"cache-{slot.name}"
            server = start_reference(ctx.tmp / name, name=name, proxy_remote=upstream.url)
            ctx.stack.callback(server.stop)
            cache = Cache(server, "docker-registry", ["--src-no-creds"])
        ctx.note(f"{slot.name} slot's pull-through cache: {server.name}, {cache.kind} ({server.url})")
        self.caches[slot.name] = cache
        return cache


class PullThroughCache:
    name = "pull-cache"
    phase = "pull_cache"

    def __init__(self, lab: CacheLab) -> None:
        self.lab = lab

    def prepare(self, ctx: Context, server: Server) -> None:
        require("skopeo", "skopeo")
        self.lab.cache_for(ctx, server)

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        cfg = ctx.cfg
        cache = self.lab.cache_for(ctx, server)
        upstream = self.lab.upstream_server(ctx)
        work = ctx.tmp / f"pull-cache-{server.name}-{round_no}"
        repo = f"bench/pull-{server.name}-{round_no}-{uuid.uuid4().hex[:8]}"
        try:
            layout = build_layout(work / "layout", ctx.source, cfg.image_layers, cfg.layer_size)
            source = f"oci:{layout.path}:{layout.tag}"
            skopeo_copy(
                ctx, TLS_DEST, "--dest-no-creds", source, f"docker://{upstream.host}/{repo}:{layout.tag}"
            )
            plain = Cache(upstream, "docker-registry", ["--src-no-creds"])
            straight = f"{upstream.host}/{repo}:{layout.tag}"
            cached, direct = self._refs(ctx, cache, upstream, repo, layout, round_no)

            os.sync()
            pair = _alternate(round_no, ("upstream", plain, straight), ("cold", cache, cached))
            times = {label: c.timed_pull(ctx, ref, work / "pulled", layout.layers) for label, c, ref in pair}

            if cache.kind == "dockyard":
                self._push_direct(ctx, cache, layout, direct)
                ctx.say(self._wait_inspected(ctx, cache, [cached, direct]) + " (untimed)")
            os.sync()
            direct_from = cache if cache.kind == "dockyard" else plain
            pair = _alternate(round_no, ("warm", cache, cached), ("direct", direct_from, direct))
            times.update(
                {label: c.timed_pull(ctx, ref, work / "pulled", layout.layers) for label, c, ref in pair}
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results = ctx.results
        results.add("cache_upstream_s", server.name, times["upstream"], bytes=layout.total_bytes)
        results.add("cache_cold_s", server.name, times["cold"])
        results.add("cache_cold_ratio", server.name, times["cold"] / times["upstream"])
        results.add("cache_direct_s", server.name, times["direct"])
        results.add("cache_warm_s", server.name, times["warm"])
        results.add("cache_warm_ratio", server.name, times["warm"] / times["direct"])
        ctx.say(
            f"pull {layout.total_bytes / 1e6:,.0f} MB: upstream {times['upstream']:.2f} s, "
            f"cold {times['cold']:.2f} s ({times['cold'] / times['upstream']:.2f}x); "
            f"direct {times['direct']:.2f} s, warm {times['warm']:.2f} s "
            f"({times['warm'] / times['direct']:.2f}x)"
        )

    @staticmethod
    def _refs(
        ctx: Context, cache: Cache, upstream: Server, repo: str, layout: Layout, round_no: int
    ) -> tuple[str, str]:
        """(through the cache, direct) references of this round's image, no ``docker://``."""
        if cache.kind != "dockyard":
            return f"{cache.server.host}/{repo}:{layout.tag}", f"{upstream.host}/{repo}:{layout.tag}"
        workspace = f"cache{round_no}x{uuid.uuid4().hex[:8]}"  # a fresh cache every round
        creds = cache.server.credentials
        assert creds is not None
        with ApiClient(cache.server.port, creds, ctx.cfg.http_timeout) as api:
            api.create_workspace(workspace)
            api.call("PUT", f"/workspaces/{workspace}/cache", {"limit_bytes": "100GiB"})
        host = upstream.host.replace(":", "_")
        return (
            f"{cache.server.host}/{workspace}/{host}/{repo}:{layout.tag}",
            f"{cache.server.host}/{DIRECT_WORKSPACE}/{repo.replace('/', '-')}:{layout.tag}",
        )

    @staticmethod
    def _push_direct(ctx: Context, cache: Cache, layout: Layout, ref: str) -> None:
        creds = cache.creds[1]
        source = f"oci:{layout.path}:{layout.tag}"
        skopeo_copy(ctx, TLS_DEST, "--dest-creds", creds, source, f"docker://{ref}")

    @staticmethod
    def _wait_inspected(ctx: Context, cache: Cache, refs: list[str]) -> str:
        return wait_inspected(ctx, cache.server, refs)


def wait_inspected(ctx: Context, server: Server, refs: list[str]) -> str:
    """Until the catalog of ``server`` (token mode) has inspected each version of ``refs``
    (``host/workspace/image:tag``; available, or failed: it was tried); what each ended as."""
    creds = server.credentials
    assert creds is not None
    start = time.monotonic()
    ended: list[str] = []
    with ApiClient(server.port, creds, ctx.cfg.http_timeout) as api:
        for ref in refs:
            image, version = ref.split("/", 1)[1].rsplit(":", 1)
            path = f"/images/{quote(image)}/versions/{quote(version)}"
            while True:
                found = api.call("GET", path, expect=(200, 404))  # 404: not in the catalog yet
                status = found.get("status") if isinstance(found, dict) else None
                status = status if isinstance(status, str) else None
                if status in ("available", "failed"):
                    ended.append(str(status))
                    break
                if time.monotonic() - start > ctx.cfg.available_timeout:
                    raise RegistryError(f"{image}:{version} is {status or 'not in the catalog'}")
                time.sleep(0.05)
    return f"catalog inspection {'/'.join(ended)} after {time.monotonic() - start:.1f} s"


Pull = tuple[str, "Cache", str]  # (label, where from, reference)


def _alternate(round_no: int, a: Pull, b: Pull) -> tuple[Pull, Pull]:
    """Who goes first alternates between rounds (as the registries do)."""
    return (a, b) if round_no % 2 == 0 else (b, a)


def _check_pulled(dest: Path, layers: int) -> None:
    """skopeo's ``dir:``: one file per blob (named by its hex digest), manifest.json, version."""
    blobs = [p for p in dest.iterdir() if p.name not in ("manifest.json", "version")]
    if len(blobs) < layers + 1:
        raise RuntimeError(f"pulled image has {len(blobs)} blobs, expected {layers + 1}")
