"""Catalog pages at scale (not part of ``python -m bench``): how long one page of
``GET /api/v1/versions`` and ``GET /api/v1/images`` takes with a large catalog, on SQLite and
on PostgreSQL, through the HTTP API of a real ``dockyard serve`` (token mode)::

    python -m bench.catalog_pages                       # 100,000 images x 10 versions, both databases
    python -m bench.catalog_pages --db sqlite --images 20000 --samples 50

For each database: a fresh server (its own data dir; on PostgreSQL a database created for the
run on ``--pg``, dropped at the end), the catalog written straight into its tables
(:mod:`bench.catalog_data`: bulk inserts, then ``ANALYZE`` on PostgreSQL, as autovacuum would;
SQLite is left as a server leaves it), and a user ``member`` made through the API, a reader in
10 of the 100 workspaces. Then, as the admin (who sees everything: no permission filter) and as
``member`` (the permission condition decides every row), each page is asked ``--samples``
times on one keep-alive connection after two warm-up requests:

- **first**: ``?limit=50``;
- **deep**: ``?limit=50&offset=50000`` (``--deep-offset``);
- **filtered**: ``?limit=50&platform=linux/arm64&status=available``.

And search (``GET /api/v1/search?limit=50``, issue 17, the same 50 ms target), each
answer with its exact total and facets counted over every match:

- **search-fulltext**: ``q=aligner`` (one image in eight);
- **search-package**: ``q=samtools>=1.1`` (a package with its version compared; one in eight).

And the web UI's rows (issue 14, target: median under 100 ms): the Docker Repository page as a
browser asks for it, the page shell (``GET /repository``) and its data call (``GET
/api/v1/versions?sort=name&order=asc&limit=50&offset=0``, the table's first page).

Every answer carries a ``total`` counted up to the catalog's cap (1,000; ``total_exact`` false
beyond, printed ``1,000+``), so no request counts every matching row; a deep page still reads
the rows before its offset. Client-side wall times (request sent to
body read); p50 and p99 (nearest rank, so with fewer than 100 samples p99 is the slowest but
one or the slowest). The machine's load average is printed beside them: the figures are only
comparable at the same load. ``--json`` writes every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from bench import servers
from bench.catalog_data import Shape, fill_postgres, fill_sqlite
from bench.servers import PG_DEFAULT, Server, start_dockyard

MEMBER, MEMBER_PASSWORD = "member", "bench-member-password"
MEMBER_WORKSPACES = 10
TARGET_MS = 50.0
UI_TARGET_MS = 100.0  # the web UI's rows: median
UI_DATA_CALL = {"sort": "name", "order": "asc", "limit": 50, "offset": 0}
FILTER = {"platform": "linux/arm64", "status": "available"}
SEARCHES = {"search-fulltext": "aligner", "search-package": "samtools>=1.1"}


@dataclass
class Row:
    database: str
    endpoint: str
    page: str
    caller: str
    total: int
    items: int
    samples_ms: list[float]
    exact: bool = True

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _fill(server: Server, url: str, shape: Shape) -> float:
    if not url:
        return fill_sqlite(str(server.data_dir / "dockyard.db"), shape)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return asyncio.run(fill_postgres(dsn, shape))


def _client(server: Server, username: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", auth=(username, password), timeout=600)


def _prepare_member(admin: httpx.Client, shape: Shape) -> None:
    admin.post("/users", json={"username": MEMBER, "password": MEMBER_PASSWORD}).raise_for_status()
    for index in range(MEMBER_WORKSPACES):
        path = f"/workspaces/{shape.workspace_name(index)}/members/{MEMBER}"
        admin.put(path, json={"role": "reader"}).raise_for_status()


def _measure(
    client: httpx.Client, path: str, params: dict[str, Any], samples: int, *, json_body: bool = True
) -> tuple[dict[str, Any], list[float]]:
    for _ in range(2):  # warm-up: caches, the password check the server then remembers
        client.get(path, params=params).raise_for_status()
    times: list[float] = []
    body: dict[str, Any] = {}
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(path, params=params)
        response.raise_for_status()
        body = response.json() if json_body else {}
        times.append((time.perf_counter() - started) * 1000)
    return body, times


def run_database(kind: str, shape: Shape, args: argparse.Namespace, base: Path) -> list[Row]:
    rows: list[Row] = []
    with servers.metadata_database(kind, args.pg) as url:
        server = start_dockyard(base / kind, name=f"dockyard-{kind}", token_mode=True, database_url=url)
        try:
            assert server.credentials is not None
            seconds = _fill(server, url, shape)
            print(
                f"{kind}: {shape.images:,} images, {shape.total_versions:,} versions "
                f"written in {seconds:.1f} s"
            )
            with (
                _client(server, *server.credentials) as admin,
                _client(server, MEMBER, MEMBER_PASSWORD) as member,
            ):
                _prepare_member(admin, shape)
                pages: dict[str, dict[str, Any]] = {
                    "first": {},
                    "deep": {"offset": args.deep_offset},
                    "filtered": FILTER,
                }
                rows += _ui_rows(kind, server, admin, member, args.samples)
                for endpoint in ("versions", "images"):
                    for page, params in pages.items():
                        for caller, client in (("admin", admin), ("member", member)):
                            body, times = _measure(
                                client, f"/{endpoint}", {"limit": 50, **params}, args.samples
                            )
                            total, exact = body["total"], body.get("total_exact", True)
                            row = Row(kind, endpoint, page, caller, total, len(body["items"]), times, exact)
                            rows.append(row)
                            _print_row(row)
                for endpoint, q in SEARCHES.items():
                    for caller, client in (("admin", admin), ("member", member)):
                        body, times = _measure(client, "/search", {"q": q, "limit": 50}, args.samples)
                        exact = body.get("total_exact", True)
                        row = Row(
                            kind, endpoint, "first", caller, body["total"], len(body["items"]), times, exact
                        )
                        rows.append(row)
                        _print_row(row)
        finally:
            server.stop()
    return rows


def _ui_rows(kind: str, server: Server, admin: httpx.Client, member: httpx.Client, samples: int) -> list[Row]:
    """The Docker Repository page of the web UI: its shell, then its data call, per caller."""
    rows: list[Row] = []
    with httpx.Client(base_url=server.url, timeout=600) as browser:
        _, times = _measure(browser, "/repository", {}, samples, json_body=False)
        rows.append(Row(kind, "ui:page", "shell", "anyone", 0, 0, times))
    for caller, client in (("admin", admin), ("member", member)):
        body, times = _measure(client, "/versions", UI_DATA_CALL, samples)
        exact = body.get("total_exact", True)
        rows.append(Row(kind, "ui:data", "first", caller, body["total"], len(body["items"]), times, exact))
    for row in rows:
        verdict = "ok" if row.p50 <= UI_TARGET_MS else "over"
        print(
            f"  {row.database:8} {row.endpoint:9} {row.page:9} {row.caller:7} p50={row.p50:9.1f} ms  "
            f"p99={row.p99:9.1f} ms  (web UI target p50 <= {UI_TARGET_MS:.0f} ms: {verdict})",
            flush=True,
        )
    return rows


def _print_row(row: Row) -> None:
    verdict = "ok" if row.p99 <= TARGET_MS else "over"
    print(
        f"  {row.database:8} /{row.endpoint:8} {row.page:9} {row.caller:7} "
        f"total={f'{row.total:,}' + ('' if row.exact else '+'):>10} "
        f"items={row.items:>3}  p50={row.p50:9.1f} ms  p99={row.p99:9.1f} ms  "
        f"(target p99 <= {TARGET_MS:.0f} ms: {verdict})",
        flush=True,
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.catalog_pages", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--versions", type=int, default=10, help="versions per image (default 10: 1,000,000)")
    p.add_argument("--samples", type=int, default=30, help="timed requests per row (default 30)")
    p.add_argument("--deep-offset", type=int, default=50_000)
    p.add_argument("--db", action="append", choices=("sqlite", "postgres"), default=[])
    p.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL (default $DOCKYARD_TEST_PG)")
    p.add_argument("--tmp-dir", type=Path, default=None, help="parent of the run's temp dir")
    p.add_argument("--json", type=Path, default=None, help="write every sample here")
    args = p.parse_args(argv)
    if args.images < 100 or args.versions < 1 or args.samples < 1:
        p.error("--images must be at least 100 (one per workspace), --versions and --samples at least 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so that the servers are stopped and the temp dir removed


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    shape = Shape(args.images, args.versions)
    load = os.getloadavg()
    print(
        f"catalog pages: {shape.images:,} images x {shape.versions} versions, {args.samples} samples, "
        f"HTTP to a real dockyard serve; {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f}"
    )
    base = Path(tempfile.mkdtemp(prefix="bench-catalog-", dir=args.tmp_dir))
    rows: list[Row] = []
    try:
        for kind in args.db or ["sqlite", "postgres"]:
            rows += run_database(kind, shape, args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    after = os.getloadavg()
    print(f"load average at the end: {after[0]:.1f} {after[1]:.1f}")
    if args.json is not None:
        data = {"shape": asdict(shape), "load": [load, after], "rows": [asdict(row) for row in rows]}
        args.json.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
