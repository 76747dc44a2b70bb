"""Prometheus metrics. With several server processes, ``PROMETHEUS_MULTIPROC_DIR`` is set by
``dockyard serve`` and ``/metrics`` aggregates every process's samples."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("dockyard_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "dockyard_http_request_duration_seconds",
    "Time to the end of the response",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BYTES_SENT = Counter("dockyard_http_response_bytes_total", "Response body bytes announced", ["route"])


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        # prometheus_client leaves this constructor unannotated.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
