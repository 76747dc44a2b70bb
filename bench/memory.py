"""RSS of a server's whole process tree, sampled from /proc in a background thread."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import defaultdict
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                kids.extend(int(c) for c in (task / "children").read_text().split())
    return kids


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    seen: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def _rss(pid: int) -> int:
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(root: int) -> int:
    """Sum of RSS over the tree (shared pages of forked workers count once per process)."""
    return sum(_rss(pid) for pid in process_tree(root))


def _pss(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_pss(root: int) -> int:
    """Proportional set size of the tree: shared pages divided among their users."""
    return sum(_pss(pid) for pid in process_tree(root))


class RssSampler(threading.Thread):
    """Samples each watched tree every ``interval`` seconds, filed under the current phase."""

    def __init__(self, roots: dict[str, int], interval: float = 0.05) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.roots = roots
        self.interval = interval
        self.phase = "startup"
        self.samples: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.max_processes: dict[str, int] = defaultdict(int)
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample_once()
            self._stop_event.wait(self.interval)

    def sample_once(self) -> None:
        for name, root in self.roots.items():
            pids = process_tree(root)
            value = sum(_rss(pid) for pid in pids)
            with self._lock:
                self.samples[self.phase][name].append(value)
                self.max_processes[name] = max(self.max_processes[name], len(pids))

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def peak(self, phase: str, name: str) -> int:
        with self._lock:
            values = self.samples.get(phase, {}).get(name, [])
            return max(values) if values else 0

    def median(self, phase: str, name: str) -> int:
        with self._lock:
            values = sorted(self.samples.get(phase, {}).get(name, []))
        return values[len(values) // 2] if values else 0

    def count(self, phase: str, name: str) -> int:
        with self._lock:
            return len(self.samples.get(phase, {}).get(name, []))
