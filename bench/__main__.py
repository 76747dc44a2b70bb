"""``python -m bench``: Dockyard side by side with the reference registry (see README.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from rich.console import Console

from bench import loadtools, machine, metrics, report, runner
from bench.config import WORKLOADS, BenchConfig
from bench.servers import registry_version

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--rounds", type=int, default=None, help="rounds per workload (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and durations: a smoke run for tests")
    p.add_argument(
        "--only", action="append", choices=WORKLOADS, default=[], help="run only this workload (repeatable)"
    )
    p.add_argument(
        "--s3",
        action="store_true",
        help="the S3 rows (same as --only s3): both registries on a Ceph radosgw that scripts/ceph.sh starts",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where <timestamp>/ goes")
    p.add_argument(
        "--tmp-dir", type=Path, default=None, help="parent of the run's temp dir (default: system)"
    )
    p.add_argument(
        "--dockyard-as-reference",
        action="store_true",
        help="DEBUG: run a second reference registry in the Dockyard slot (checks the harness)",
    )
    args = p.parse_args(argv)
    if args.s3 and "s3" not in args.only:
        args.only.append("s3")
    if args.rounds is not None and not 1 <= args.rounds <= 20:
        p.error("--rounds must be between 1 and 20")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the try/finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    cfg = (BenchConfig.quick_config() if args.quick else BenchConfig()).with_rounds(args.rounds)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    started = time.perf_counter()

    busy = machine.busy_fraction(1.0)
    notes: list[str] = []
    if busy > 0.15:
        notes.append(
            f"[yellow]warning: the CPUs were {busy:.0%} busy before the run started: "
            "figures are noisy[/yellow]"
        )
        console.print(notes[-1])

    out = runner.run(cfg, args.only, console.print, args.tmp_dir, args.dockyard_as_reference)

    specs = metrics.catalog(
        cfg.get_clients,
        cfg.manifest_connections,
        cfg.image_layers,
        cfg.archive_size,
        cfg.docker_archive_size,
        cfg.archive_chunk_size,
        cfg.blob_size,
        cfg.layer_size,
    )
    limit_values = {lim.key: lim.value for lim in out.limits}
    rows = metrics.rows(specs, out.results, limit_values)
    slot = "reference registry (DEBUG --dockyard-as-reference)" if args.dockyard_as_reference else "Dockyard"
    versus = "DEBUG: 2nd reference in the Dockyard slot" if args.dockyard_as_reference else "Dockyard"
    title = f"{versus} vs reference registry (Distribution 2.8.2): medians of {cfg.rounds} round(s)"
    notes += [
        "load tools: blob GET curl -o /dev/null processes; manifest HEAD hey; manifest GET wrk "
        "(Debian's wrk 4.1 hangs on HEAD)",
        "RSS: sum over the server's whole process tree, sampled every 50 ms",
    ]
    if any(w.startswith("archive-") for w in args.only) or not args.only:
        notes.append(
            "archive rows: Dockyard only (the reference has no archive feature), run on a token-mode "
            "Dockyard of their own; the /v2 rows push and pull the same layers as plain blobs on both"
        )
    if "pull-cache" in args.only or not args.only:
        notes.append(
            "pull-through cache rows: each registry's cache in front of the same upstream "
            "(docker-registry), skopeo to dir:, fresh layers every round; reference = docker-registry "
            "with proxy.remoteurl; the ratios are per round, then the median"
        )
    if "s3" in args.only:
        notes.append(
            "S3 rows: both registries on the same Ceph radosgw (scripts/ceph.sh, memstore OSD: objects "
            "in RAM), a bucket each; Dockyard in token mode (Bearer tokens), the reference without auth, "
            "both streaming blob GETs (no redirect); raw = the bucket itself (boto3 PUT, curl GET)"
        )
        notes.append(
            "S3 region copy: Dockyard only (its own token-mode server: regions eu, a folder, the default, "
            "and us, a bucket on the same radosgw); a pushed version from the API's add of us until us "
            "is available; beside the bucket's raw PUT"
        )
    notes += [f"[red]error: {e}[/red]" for e in out.results.errors]
    report.print_report(console, rows, out.limits, title, notes)

    folder = args.results_dir / stamp
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "timestamp": stamp,
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": cfg.__dict__,
        "only": args.only,
        "dockyard_slot": slot,
        "servers": out.servers,
        "machine": {**machine.describe(), "busy_before_run": busy},
        "versions": {**loadtools.versions(), "docker-registry": registry_version()},
        "load_tools": {
            "blob_get": "curl",
            "manifest_head": "hey",
            "manifest_get": "wrk",
            "archive_upload": "http.client + sendfile (PATCH chunks)",
            "archive_download": "curl",
        },
        "memory": out.memory,
        "runtime_s": time.perf_counter() - started,
    }
    report.write_json(folder / "results.json", report.to_json(rows, specs, out.results, out.limits, meta))
    charted = report.write_chart(folder / "chart.png", rows, title)
    console.print(
        f"results: {folder / 'results.json'}"
        + (f", chart: {folder / 'chart.png'}" if charted else " (no chart: matplotlib missing)")
    )
    console.print(f"total run time {time.perf_counter() - started:,.0f} s")
    return 1 if out.results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
