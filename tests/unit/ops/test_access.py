"""The access log: metric labels (a fixed, small set whatever paths clients send) and the
request lines, written in batches."""

from __future__ import annotations

import json
import os

import pytest

from dockyard.ops.access import FLUSH_LINES, LineBuffer, route_of


def test_paths_outside_v2_share_a_few_labels() -> None:
    paths = [f"/a{i}" for i in range(250)]
    paths += [f"/api/v1/thing{i}" for i in range(250)]
    paths += [f"/{i}/deep/path" for i in range(250)]
    paths += [f"/healthz/{i}" for i in range(125)] + [f"/v2x{i}" for i in range(125)]
    assert len(set(paths)) == 1000
    assert {route_of(path) for path in paths} <= {"healthz", "metrics", "api", "other"}


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/healthz", "healthz"),
        ("/metrics", "metrics"),
        ("/api", "api"),
        ("/api/v1/repositories", "api"),
        ("/", "other"),
        ("", "other"),
        ("/favicon.ico", "other"),
        ("/apix", "other"),
        ("/v2evil", "other"),
        ("/v2", "v2"),
        ("/v2/", "v2"),
        ("/v2/_catalog", "v2_catalog"),
        ("/v2/library/alpine/manifests/latest", "v2/manifests"),
        ("/v2/library/alpine/blobs/sha256:abc", "v2/blobs"),
        ("/v2/library/alpine/blobs/uploads/1234", "v2/blobs/uploads"),
        ("/v2/library/alpine/tags/list", "v2/tags/list"),
        ("/v2/library/alpine/referrers/sha256:abc", "v2/referrers"),
    ],
)
def test_route_labels(path: str, route: str) -> None:
    assert route_of(path) == route


def _read_lines(fd: int) -> list[dict[str, object]]:
    """What has been written to the (non-blocking) pipe so far, as JSON lines."""
    data = b""
    while True:
        try:
            data += os.read(fd, 1 << 20)
        except BlockingIOError:
            break
    return [json.loads(line) for line in data.decode().splitlines()]


async def test_request_lines_keep_every_field_as_json() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)
    lines = LineBuffer(write)
    try:
        lines.add((1700000000.1234, "GET", '/v2/a"b\\c/manifests/\u00e9', 404, 0, 0.0123456, "10.0.0.1"))
        lines.add((1700000001.0, "HEAD", "/healthz", 200, 15, 0.0001, None))
        with pytest.raises(BlockingIOError):  # nothing written before the batch is due
            os.read(read, 1)
        lines.flush()
        assert _read_lines(read) == [
            {
                "ts": 1700000000.123,
                "method": "GET",
                "path": '/v2/a"b\\c/manifests/\u00e9',
                "status": 404,
                "bytes": 0,
                "ms": 12.35,
                "client": "10.0.0.1",
            },
            {
                "ts": 1700000001.0,
                "method": "HEAD",
                "path": "/healthz",
                "status": 200,
                "bytes": 15,
                "ms": 0.1,
                "client": None,
            },
        ]
    finally:
        lines.flush()
        os.close(read)
        os.close(write)


async def test_a_full_batch_is_written_at_once() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)
    lines = LineBuffer(write)
    try:
        for n in range(FLUSH_LINES):
            lines.add((1.0, "GET", f"/v2/r/manifests/{n}", 200, 1, 0.001, "127.0.0.1"))
        written = _read_lines(read)
        assert [line["path"] for line in written] == [f"/v2/r/manifests/{n}" for n in range(FLUSH_LINES)]
    finally:
        lines.flush()
        os.close(read)
        os.close(write)
