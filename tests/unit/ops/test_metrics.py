"""Per-process sample files (several server processes): every mapped byte has a block on
disk, so that a full disk can never fault a server process through the map (SIGBUS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import mmap_dict, values

from dockyard.ops import metrics


def _allocated(path: Path) -> bool:
    info = path.stat()
    return info.st_blocks * 512 >= info.st_size > 0


def test_sample_files_are_allocated_before_they_are_mapped_and_as_they_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # As each server process gets it (prometheus_client leaves its module unannotated).
    sample = values.MultiProcessValue(lambda: 4242)  # type: ignore[no-untyped-call]
    sample_file = tmp_path / "counter_4242.db"
    try:
        sample("counter", "dockyard_test", "dockyard_test_total", ["n"], ["0"], "help").inc(1)
        assert _allocated(sample_file)
        assert sample_file.stat().st_size >= metrics.PREALLOCATE

        for n in range(1, 12_000):  # far more label sets than fit in the first allocation
            sample("counter", "dockyard_test", "dockyard_test_total", ["n"], [str(n)], "help").inc(n)
        assert sample_file.stat().st_size > metrics.PREALLOCATE
        assert _allocated(sample_file)
    finally:
        values.close_all_multiprocess_files()  # type: ignore[no-untyped-call]  # as above
    entries = mmap_dict.MmapedDict.read_all_values_from_file(str(sample_file))  # type: ignore[no-untyped-call]
    counted = {key: value for key, value, _timestamp, _position in entries}
    assert len(counted) == 12_000
    assert sum(counted.values()) == sum(range(1, 12_000)) + 1
