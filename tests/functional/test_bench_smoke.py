"""Smoke test of the benchmark harness: ``python -m bench --quick --rounds 1``.

Tiny sizes (8 MiB blobs, 1 s load, 3 layers, a 32 MiB archive) against a real Dockyard
(plus a token-mode one for the archive and token-issuance rows, and the pull-through cache
rows' upstream and caches) and the reference registry. It checks that the harness runs end to
end, prints its table and writes results for both registries (Dockyard only for the archive and
token rows); it asserts nothing about speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("docker-registry", "skopeo", "wrk", "hey", "curl")

pytestmark = pytest.mark.clients


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and ") Z " not in Path(f"/proc/{pid}/stat").read_text()


def test_bench_quick_run(tmp_path: Path) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"benchmark tools missing: {', '.join(missing)}: run scripts/setup.sh test"
    scratch, results_dir = tmp_path / "scratch", tmp_path / "results"
    scratch.mkdir()
    argv = [sys.executable, "-m", "bench", "--quick", "--rounds", "1"]
    proc = subprocess.run(
        [*argv, "--results-dir", str(results_dir), "--tmp-dir", str(scratch)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "vs reference registry" in proc.stdout
    labels = (
        "blob GET, 1 client",
        "blob PUT, chunked",
        "manifest HEAD p99",
        "image push + pull",
        "archive import OCI",
        "archive download docker",
        "pull through the cache, warm",
        "token issuance, robot token",
        "RSS idle",
    )
    for label in labels:
        assert label in proc.stdout, label

    [run_dir] = results_dir.iterdir()
    data = json.loads((run_dir / "results.json").read_text())
    assert not data["errors"]
    keys = {m["key"] for m in data["metrics"]}
    assert {"blob_get_1", "blob_get_n", "blob_put_mono", "blob_put_chunked", "manifest_head_rps"} <= keys
    assert {"manifest_get_rps", "image_push_s", "image_pull_s", "rss_idle", "rss_peak_get"} <= keys
    assert {"archive_import", "archive_import_phase", "archive_reimport", "archive_import_docker"} <= keys
    assert "package_index" in keys
    assert {"archive_export", "archive_export_oci", "archive_layers_push", "archive_layers_pull"} <= keys
    assert {"cache_upstream_s", "cache_cold_ratio", "cache_direct_s", "cache_warm_ratio"} <= keys
    assert {"tokens_robot_rps", "tokens_pat_rps", "tokens_password_rps", "tokens_password_p99"} <= keys
    for metric in data["metrics"]:
        assert metric["dockyard"]["median"] > 0, metric["key"]
        if metric["compared"]:
            assert metric["reference"]["median"] > 0, metric["key"]
        else:  # the archive, package-index and token rows: the reference has none of them
            assert metric["key"].startswith(("archive_", "package_", "tokens_")), metric["key"]
            assert metric["reference"]["median"] is None, metric["key"]
    limits = {lim["key"] for lim in data["limits"]}
    assert limits >= {"sha256", "loopback_tcp", "disk_write", "get_ceiling_1"}
    assert limits >= {"export_ceiling", "gzip6", "disk_write_direct"}  # measured by the archive workloads

    # Both servers are stopped and the run's temp dir is gone.
    for server in data["servers"].values():
        assert not _alive(server["pid"]), server
    assert list(scratch.iterdir()) == []
