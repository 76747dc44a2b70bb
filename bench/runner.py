"""One benchmark run: limits, both servers, the workloads alternating between them, memory."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import limits as machine_limits
from bench.config import OPT_IN, BenchConfig
from bench.data import BlobSource
from bench.memory import RssSampler, tree_pss
from bench.metrics import Results
from bench.servers import DOCKYARD, Server, start_dockyard, start_reference
from bench.workloads.archives import ArchiveExport, ArchiveImport, ArchiveLab
from bench.workloads.base import Context, Workload
from bench.workloads.blob_get import BlobGet
from bench.workloads.blob_put import BlobPut
from bench.workloads.image import Image
from bench.workloads.manifests import Manifests
from bench.workloads.pull_cache import CacheLab, PullThroughCache
from bench.workloads.s3 import S3Rows
from bench.workloads.tokens import TokenIssuance

IDLE_SETTLE_S = 2.0
IDLE_SAMPLE_S = 1.0


def all_workloads() -> list[Workload]:
    lab = ArchiveLab()  # the archive and token workloads share a token-mode Dockyard
    caches = CacheLab(lab.api_server)  # the pull-through cache rows use that Dockyard too
    return [
        BlobGet(),
        BlobPut(),
        Manifests(),
        Image(),
        PullThroughCache(caches),
        ArchiveImport(lab),
        ArchiveExport(lab),
        ArchiveImport(lab),
        ArchiveExport(lab),
        TokenIssuance(lab),
        S3Rows(),
    ]


@dataclass
class RunOutput:
    results: Results
    limits: list[machine_limits.Limit]
    memory: dict[str, object] = field(default_factory=dict)
    servers: dict[str, dict[str, object]] = field(default_factory=dict)
    seconds: float = 0.0


@contextlib.contextmanager
def temp_root(parent: Path | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _start_servers(root: Path, dockyard_as_reference: bool, stack: contextlib.ExitStack) -> list[Server]:
    if dockyard_as_reference:
        dockyard = start_reference(root / "dockyard", name=DOCKYARD)
    else:
        dockyard = start_dockyard(root / "dockyard")
    stack.callback(dockyard.stop)
    reference = start_reference(root / "reference")
    stack.callback(reference.stop)
    return [dockyard, reference]


def run(
    cfg: BenchConfig,
    only: list[str],
    say: Callable[[str], None],
    tmp_parent: Path | None = None,
    dockyard_as_reference: bool = False,
) -> RunOutput:
    started = time.perf_counter()
    results = Results()
    workloads = [w for w in all_workloads() if w.name in only or (not only and w.name not in OPT_IN)]
    with temp_root(tmp_parent) as root, contextlib.ExitStack() as stack:
        say(f"temp dir {root}; making a {cfg.blob_size / 2**20:,.0f} MiB random blob")
        source = BlobSource(root / "blob.bin", cfg.blob_size)
        stack.callback(source.close)

        say("machine limits:")
        limits = machine_limits.measure(cfg, source, root, say)

        servers = _start_servers(root, dockyard_as_reference, stack)
        described = {s.name: {"kind": s.kind, "pid": s.pid, "url": s.url} for s in servers}
        for s in servers:
            say(f"{s.name}: {s.kind} (pid {s.pid}, {s.url}, data {s.data_dir})")
        sampler = RssSampler({s.name: s.pid for s in servers})
        sampler.start()
        stack.callback(sampler.stop)

        time.sleep(IDLE_SETTLE_S)
        sampler.set_phase("idle_start")
        time.sleep(IDLE_SAMPLE_S)
        pss_start = {s.name: tree_pss(s.pid) for s in servers}

        ctx = Context(cfg, source, root / "scratch", results, say, stack, say)
        ctx.tmp.mkdir()
        for workload in workloads:
            _run_workload(ctx, workload, servers, sampler)

        sampler.set_phase("settle_end")
        time.sleep(IDLE_SETTLE_S)
        sampler.set_phase("idle_end")
        time.sleep(IDLE_SAMPLE_S)
        sampler.set_phase("done")
        pss_end = {s.name: tree_pss(s.pid) for s in servers}

        memory: dict[str, object] = {}
        for s in servers:
            results.add("rss_idle", s.name, sampler.median("idle_start", s.name))
            results.add("rss_idle_end", s.name, sampler.median("idle_end", s.name))
            if "blob-get" in [w.name for w in workloads]:
                results.add("rss_peak_get", s.name, sampler.peak("blob_get", s.name))
            memory[s.name] = {
                "peak_by_phase": {p: sampler.peak(p, s.name) for p in sampler.samples},
                "samples_by_phase": {p: sampler.count(p, s.name) for p in sampler.samples},
                "max_processes": sampler.max_processes[s.name],
                "pss_idle_start": pss_start[s.name],
                "pss_idle_end": pss_end[s.name],
                "log_tail": s.log_tail(10),
            }
        for s in servers:
            if s.process.poll() is not None:
                results.errors.append(f"{s.name} exited with {s.process.returncode} during the run")
    limits += machine_limits.ceiling_limits(results, cfg.get_clients)
    return RunOutput(results, limits, memory, described, time.perf_counter() - started)


def _prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    def prefixed(msg: str) -> None:
        say(prefix + msg)

    return prefixed


def _run_workload(ctx: Context, workload: Workload, servers: list[Server], sampler: RssSampler) -> None:
    cfg = ctx.cfg
    failed: set[str] = set()
    ctx.say(f"[bold]{workload.name}[/bold]")
    sampler.set_phase(f"{workload.phase}_prepare")
    for server in servers:
        if not _attempt(ctx, workload, server, None):
            failed.add(server.name)
    for round_no in range(cfg.rounds):
        order = servers if round_no % 2 == 0 else servers[::-1]  # alternate who goes first
        for server in order:
            if server.name in failed:
                continue
            prefix = f"  round {round_no + 1}/{cfg.rounds} "
            rctx = replace(
                ctx, say=_prefixed(ctx.say, f"{prefix}{server.name:<9} "), note=_prefixed(ctx.say, prefix)
            )
            os.sync()
            sampler.set_phase(workload.phase)
            ok = _attempt(rctx, workload, server, round_no)
            sampler.set_phase(f"{workload.phase}_between")
            if not ok:
                failed.add(server.name)


def _attempt(ctx: Context, workload: Workload, server: Server, round_no: int | None) -> bool:
    """``prepare`` (round_no None) or one round; an error is recorded, and the run goes on."""
    what = "prepare" if round_no is None else f"round {round_no + 1}"
    try:
        if round_no is None:
            workload.prepare(ctx, server)
        else:
            workload.run(ctx, server, round_no)
    except Exception as exc:  # one failing workload must not lose the rest of the run
        message = f"{workload.name} {what} on {server.name}: {type(exc).__name__}: {exc}"
        ctx.results.errors.append(message)
        ctx.say(f"[red]failed: {message}[/red]")
        if server.process.poll() is not None:
            ctx.say(f"{server.name} exited with {server.process.returncode}; log tail:\n{server.log_tail()}")
        if os.environ.get("BENCH_TRACEBACK"):
            ctx.say(traceback.format_exc())
        return False
    return True
