"""Facts about the machine, and whether something else is keeping it busy."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` while this process sleeps."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total else 0.0


def describe() -> dict[str, object]:
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        ),
        "mem_total": meminfo.get("MemTotal", "?").strip(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
    }
