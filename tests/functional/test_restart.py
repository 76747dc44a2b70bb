"""Crashes: a server killed at any moment leaves no partial blob visible, restarts clean,
and the client resumes its upload from where the bytes stopped; workers never outlive
their supervisor."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.oci import OciClient, location_of, random_bytes, sha256, with_query
from tests.support.servers import alive, kill_hard, private_dockyard, server_workers, start_dockyard


def _offset(resp: httpx.Response) -> int:
    assert resp.status_code == 204, resp.text
    return int(resp.headers["Range"].split("-", 1)[1]) + 1


def test_upload_resumes_after_the_server_is_killed_between_chunks(db_kind: str, tmp_path: Path) -> None:
    data = random_bytes(3 * 1024 * 1024 + 17)
    half = len(data) // 2
    with private_dockyard(db_kind, tmp_path) as (server, restart):
        with OciClient.connect(server.url) as client:
            location = httpx.URL(location_of(client.start_upload("lab/resume"))).raw_path.decode()
            first = client.http.patch(
                location,
                content=data[:half],
                headers={"Content-Range": f"0-{half - 1}", "Content-Type": "application/octet-stream"},
            )
            assert first.status_code == 202
        kill_hard(server)

        again = restart()
        with OciClient.connect(again.url) as client:
            assert _offset(client.http.get(location)) == half
            rest = client.http.patch(
                location,
                content=data[half:],
                headers={
                    "Content-Range": f"{half}-{len(data) - 1}",
                    "Content-Type": "application/octet-stream",
                },
            )
            assert rest.status_code == 202
            done = client.http.put(with_query(location, digest=sha256(data)))
            assert done.status_code == 201, done.text
            got = client.get_blob("lab/resume", sha256(data))
            assert got.status_code == 200
            assert got.content == data


def test_a_crash_mid_stream_exposes_nothing_and_the_upload_resumes(db_kind: str, tmp_path: Path) -> None:
    data = random_bytes(24 * 1024 * 1024)
    digest = sha256(data)
    with private_dockyard(db_kind, tmp_path) as (server, restart):
        with OciClient.connect(server.url) as client:
            location = httpx.URL(location_of(client.start_upload("lab/crash"))).raw_path.decode()

        sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            step = 256 * 1024
            for i in range(0, len(data), step):
                yield data[i : i + step]
                if i >= 2 * len(data) // 3:
                    sent.set()
                    time.sleep(0.2)

        def stream() -> None:
            # The server dies under it: an error here is expected.
            with httpx.Client(base_url=server.url, timeout=30) as http, contextlib.suppress(httpx.HTTPError):
                http.patch(
                    location, content=slow_body(), headers={"Content-Type": "application/octet-stream"}
                )

        streamer = threading.Thread(target=stream)
        streamer.start()
        assert sent.wait(30)
        kill_hard(server)
        streamer.join(60)

        again = restart()
        leftovers = list((server.data_dir / "storage").rglob(".tmp-*"))
        assert leftovers == []
        with OciClient.connect(again.url) as client:
            assert client.head_blob("lab/crash", digest).status_code == 404  # nothing partial is visible
            offset = _offset(client.http.get(location))
            assert 0 < offset < len(data)
            rest = client.http.patch(
                location,
                content=data[offset:],
                headers={
                    "Content-Range": f"{offset}-{len(data) - 1}",
                    "Content-Type": "application/octet-stream",
                },
            )
            assert rest.status_code == 202, rest.text
            done = client.http.put(with_query(location, digest=digest))
            assert done.status_code == 201, done.text
            assert client.get_blob("lab/crash", digest).content == data


def test_workers_exit_when_the_supervisor_is_killed_and_a_new_server_takes_the_port(tmp_path: Path) -> None:
    env = {"DOCKYARD_WORKERS": "2"}
    server = start_dockyard("sqlite", tmp_path, extra_env=env)
    workers = server_workers(server)
    try:
        assert len(workers) == 2, server.log()
        server.process.kill()  # kill -9: uvicorn's supervisor cannot stop its workers
        server.process.wait()
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)], "workers outlived their supervisor"

        port = server.host.rsplit(":", 1)[1]
        again = start_dockyard("sqlite", tmp_path, extra_env={**env, "DOCKYARD_PORT": port})
        try:
            assert again.host == server.host
            assert len(server_workers(again)) == 2, again.log()
            assert httpx.get(f"{again.url}/v2/").status_code == 200
            assert again.process.poll() is None
        finally:
            again.stop()
        assert "address already in use" not in again.log()
    finally:
        for pid in workers:  # before the fix they live on: end them (ours, by their ids)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
