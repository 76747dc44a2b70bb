"""Smoke test of the catalog pages benchmark (``python -m bench.catalog_pages``) with a tiny
catalog: it starts a real server per database, fills it, asks every page as the admin and as a
member, prints a row for each and writes every sample; it asserts nothing about speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import databases

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", databases())
def test_bench_catalog_pages_quick_run(kind: str, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    results = tmp_path / "results.json"
    argv = [sys.executable, "-m", "bench.catalog_pages", "--db", kind, "--images", "200", "--versions", "3"]
    argv += ["--samples", "2", "--deep-offset", "60", "--tmp-dir", str(scratch), "--json", str(results)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)

    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "200 images, 600 versions written" in proc.stdout
    rows = json.loads(results.read_text())["rows"]
    pages = {(r["endpoint"], r["page"], r["caller"]) for r in rows}
    assert pages == {
        (endpoint, page, caller)
        for endpoint in ("versions", "images")
        for page in ("first", "deep", "filtered")
        for caller in ("admin", "member")
    } | {("ui:page", "shell", "anyone"), ("ui:data", "first", "admin"), ("ui:data", "first", "member")} | {
        (search, "first", caller)
        for search in ("search-fulltext", "search-package")
        for caller in ("admin", "member")
    }
    for row in rows:
        assert len(row["samples_ms"]) == 2, row
        assert all(ms > 0 for ms in row["samples_ms"]), row
        assert row["items"] == min(50, max(0, row["total"] - (60 if row["page"] == "deep" else 0))), row
    totals = {(r["endpoint"], r["page"], r["caller"]): r["total"] for r in rows}
    assert totals[("versions", "first", "admin")] == 600
    assert totals[("ui:data", "first", "admin")] == 600  # the web UI's table: the same versions
    assert totals[("images", "first", "admin")] == 200
    # Search: one image in eight is an aligner, one in eight has samtools (1.1 and later in all).
    assert totals[("search-fulltext", "first", "admin")] == 25
    assert totals[("search-package", "first", "admin")] == 25
    assert 0 < totals[("search-fulltext", "first", "member")] < 25
    # The member sees less than everything, and a filter narrows it further.
    assert 0 < totals[("versions", "filtered", "member")] < totals[("versions", "first", "member")] < 600
    assert list(scratch.iterdir()) == []  # the run's temp dir is gone
