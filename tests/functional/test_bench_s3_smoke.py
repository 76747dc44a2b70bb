"""Smoke test of the benchmark's S3 rows: ``python -m bench --quick --rounds 1 --s3``.

Tiny sizes (an 8 MiB blob, 3 x 1 MiB layers) with both registries on a real Ceph radosgw
(``scripts/ceph.sh``): Dockyard in token mode on one bucket, Debian's docker-registry with its
own s3 driver on another. It checks that the rows and the bucket's raw ceilings come out for
both, that the region-copy row (Dockyard only: a version of the blob's size copied from a folder
region to a bucket region) comes out with the bytes it was given, and that radosgw is left as
it was found: stopped again when the run started it, still
running when it was (``scripts/test.sh`` starts it for its S3 stage, which runs this test).
Nothing about speed is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.s3lab import radosgw_answers

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.clients


def test_bench_s3_rows_quick(tmp_path: Path) -> None:
    ceph_before = radosgw_answers()
    scratch, results_dir = tmp_path / "scratch", tmp_path / "results"
    scratch.mkdir()
    argv = [sys.executable, "-m", "bench", "--quick", "--rounds", "1", "--s3"]
    proc = subprocess.run(
        [*argv, "--results-dir", str(results_dir), "--tmp-dir", str(scratch)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,  # ~20 s with radosgw running, plus up to ~30 s to start it
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    for label in (
        "S3: blob GET",
        "S3: blob PUT",
        "S3: image push + pull",
        "S3 bucket raw PUT",
        "S3: region copy",
    ):
        assert label in proc.stdout, label

    [run_dir] = results_dir.iterdir()
    data = json.loads((run_dir / "results.json").read_text())
    assert not data["errors"]
    metrics = {m["key"]: m for m in data["metrics"]}
    s3_keys = {"s3_blob_get_1", "s3_blob_put_mono", "s3_image_push_s", "s3_image_pull_s", "s3_image_total_s"}
    assert s3_keys <= set(metrics)
    assert "blob_get_1" not in metrics  # only the S3 rows were asked for
    for key in s3_keys:
        assert metrics[key]["dockyard"]["median"] > 0, key
        assert metrics[key]["reference"]["median"] > 0, key
    limits = {lim["key"]: lim["value"] for lim in data["limits"]}
    assert limits["s3_raw_put"] > 0
    assert limits["s3_raw_get"] > 0

    copy = metrics["s3_region_copy"]  # Dockyard only, beside the raw PUT
    assert copy["dockyard"]["median"] > 0
    assert copy["reference"]["median"] is None
    assert not copy["compared"]
    assert copy["machine_limit_key"] == "s3_raw_put"
    assert copy["met_detail"].endswith("of raw PUT"), copy["met_detail"]
    [round_one] = [d for d in data["details"] if d["metric"] == "s3_region_copy"]
    assert round_one["layer_bytes"] == data["config"]["blob_size"] == 8 * 2**20  # --quick's blob
    assert 0 < round_one["bytes"] - round_one["layer_bytes"] < 4096  # plus the image's config
    assert round_one["blobs"] == 2
    assert round_one["seconds"] > 0
    assert round_one["of_raw_put"] > 0

    assert list(scratch.iterdir()) == []  # every server stopped, the temp dir removed
    assert radosgw_answers() == ceph_before, "radosgw not left as it was found"
    if not ceph_before:
        state = Path(os.environ.get("DOCKYARD_CEPH_DIR") or REPO / ".cache" / "ceph")
        assert not list((state / "run").glob("*.pidx")), "ceph daemons left running"
