"""Prometheus metrics. With several server processes, ``PROMETHEUS_MULTIPROC_DIR`` is set by
``dockyard serve`` and ``/metrics`` aggregates every process's samples.

In that mode each process keeps its samples in files in the data folder, memory-mapped by
prometheus_client, which makes them sparse (``truncate``) and writes through the map. On a
full disk a write into a hole cannot get a block and the kernel kills the process with
SIGBUS. :class:`AllocatedMmapedDict` (installed in prometheus_client below) allocates the
blocks before every mapping instead, ``PREALLOCATE`` bytes up front (several times what a
busy server's samples take, so that even the kinds of requests first seen on a full disk
are counted); should a file have to grow on a full disk, the sample is dropped with an
``OSError`` (see :mod:`dockyard.ops.access`) and no process dies.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.mmap_dict import MmapedDict

from dockyard.ops.tally import RequestTally
from dockyard.volumes import allocate

PREALLOCATE = 1 << 20


class AllocatedMmapedDict(MmapedDict):
    """prometheus_client's sample file, whose mapped pages always have blocks behind them.

    It relies on two details of prometheus_client 0.26 (pinned): a writer maps the file at
    its size (``_capacity``), and grows it by doubling when an entry at ``_used`` would not fit.
    """

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            fd = os.open(filename, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                allocate(fd, max(os.fstat(fd).st_size, PREALLOCATE))
            finally:
                os.close(fd)
        # prometheus_client leaves this module unannotated.
        super().__init__(filename, read_mode)  # type: ignore[no-untyped-call]

    def _init_value(self, key: str) -> None:
        encoded = len(key.encode("utf-8"))
        entry = 4 + encoded + (8 - (encoded + 4) % 8) + 16  # as MmapedDict lays an entry out
        capacity: int = self._capacity
        if self._used + entry > capacity:
            while self._used + entry > capacity:
                capacity *= 2
            allocate(self._f.fileno(), capacity)  # before MmapedDict maps the grown file
        super()._init_value(key)  # type: ignore[no-untyped-call]  # unannotated, as above


# Looked up by prometheus_client each time a process opens its sample file.
values.MmapedDict = AllocatedMmapedDict  # type: ignore[attr-defined]  # not re-exported; replacing it is the point

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUESTS = Counter("dockyard_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "dockyard_http_request_duration_seconds",
    "Time to the end of the response",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
BYTES_SENT = Counter("dockyard_http_response_bytes_total", "Response body bytes announced", ["route"])
TALLY = RequestTally(REQUESTS, LATENCY, BYTES_SENT, LATENCY_BUCKETS)


def render() -> tuple[bytes, str]:
    TALLY.flush()  # this process's latest requests; the others' are at most FLUSH_SECONDS old
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        # prometheus_client leaves this constructor unannotated.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
