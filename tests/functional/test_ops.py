"""Health, metrics and request logs of a running server."""

from __future__ import annotations

import json
import time

import httpx

from tests.support.servers import RunningRegistry


def test_healthz_metrics_and_json_request_logs(registry: RunningRegistry) -> None:
    assert registry.is_dockyard, "these endpoints are Dockyard's own"
    with httpx.Client(base_url=registry.url) as http:
        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "registry_outbox_failing": 0}
        assert http.get("/v2/ops/probe/tags/list").status_code == 404
        metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = [line for line in metrics.text.splitlines() if line.startswith("dockyard_http_requests_total{")]
    assert any('route="v2/tags/list"' in line and 'status="404"' in line for line in lines), lines
    # Repository names never become label values (cardinality).
    assert "ops/probe" not in metrics.text

    # Request lines are written in batches, at most FLUSH_SECONDS (0.2 s) after the request.
    probe: list[dict[str, object]] = []
    deadline = time.monotonic() + 5
    while not probe and time.monotonic() < deadline:
        time.sleep(0.1)
        records = [json.loads(line) for line in registry.log().splitlines() if line.startswith("{")]
        probe = [r for r in records if r["path"] == "/v2/ops/probe/tags/list"]
    assert probe, "no JSON request line for the probe"
    assert probe[-1]["status"] == 404
    assert probe[-1]["method"] == "GET"
    assert {"ts", "ms", "bytes", "client"} <= probe[-1].keys()
