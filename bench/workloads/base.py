"""What a workload sees: the run's settings, the test data and a place for results."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.config import BenchConfig
from bench.data import BlobSource
from bench.metrics import Results
from bench.servers import Server


@dataclass
class Context:
    cfg: BenchConfig
    source: BlobSource
    tmp: Path  # scratch folder inside the run's temp dir
    results: Results
    say: Callable[[str], None]
    stack: contextlib.ExitStack  # closed at the end of the run (helper servers)
    note: Callable[[str], None]  # like say, without the round/registry prefix


class Workload(Protocol):
    name: str  # as given to --only
    phase: str  # RSS sampler phase while it runs

    def prepare(self, ctx: Context, server: Server) -> None:
        """Untimed set-up on one registry (push what the timed part reads)."""

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        """One timed round on one registry; adds samples to ``ctx.results``."""
