"""Dockyard scaled out as the README's "More than one process or machine" describes it, for the
tests to run it for real: two ``dockyard serve`` replicas (each its own data folder) sharing one
PostgreSQL database, one S3 prefix on Ceph radosgw and the keys, behind nginx balancing
round-robin with no sticky sessions.

Clients reach the replicas through nginx only, as they would in production. nginx names the
replica that answered each request in an ``X-Upstream`` response header, and a request still
being sent shows as the one connection from nginx a replica holds open: either way a test can
kill exactly the replica serving a connection, and restart it on the same port.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx

from tests.support.archive_crash import TOKEN_ENV
from tests.support.s3 import s3_env
from tests.support.servers import RunningRegistry, free_port, kill_hard, postgres_database, start_dockyard
from tests.support.upstreams import Nginx, start_nginx

# The nginx form the README shows: pass the Host (token realms are built from it), say who the
# client is, and stream bodies both ways (a layer can be gigabytes; nginx must not spool it).
SERVER_BLOCK = """\
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    location / {
      proxy_pass http://dockyard;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Connection "";
      add_header X-Upstream $upstream_addr always;
    }"""


@dataclass
class ScaleOut:
    """The replicas, the balancer, and ``front``: the balancer as clients see it."""

    front: RunningRegistry
    replicas: list[RunningRegistry]
    nginx: Nginx
    bases: list[Path]
    database_url: str
    envs: list[dict[str, str]]  # each replica's settings (the same but for its port)

    def replica_of(self, response: httpx.Response) -> int:
        """Which replica answered ``response`` (the last upstream nginx tried for it)."""
        address = response.headers["X-Upstream"].split(",")[-1].strip()
        hosts = [replica.host for replica in self.replicas]
        assert address in hosts, f"nginx named upstream {address!r}, not one of {hosts}"
        return hosts.index(address)

    def replica_receiving(self, timeout: float = 30.0) -> int:
        """The one replica holding a connection from nginx open now (a request in flight)."""
        deadline = time.monotonic() + timeout
        while True:
            holding = [i for i, r in enumerate(self.replicas) if established_to(port_of(r))]
            if len(holding) == 1:
                return holding[0]
            assert time.monotonic() < deadline, f"replicas holding a connection: {holding}"
            time.sleep(0.02)

    def kill(self, index: int) -> None:
        """SIGKILL the replica: a crash, no shutdown code run."""
        kill_hard(self.replicas[index])

    def restart(self, index: int) -> RunningRegistry:
        """Start the killed replica again, on its data folder and port, and wait until the
        balancer sends it requests again (nginx retries an upstream it saw fail after a while)."""
        self.replicas[index] = start_dockyard(
            "postgres", self.bases[index], self.database_url, self.envs[index]
        )
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.front.url, timeout=30) as http:
            while self.replica_of(http.get("/healthz")) != index:
                assert time.monotonic() < deadline, (
                    "the balancer never sent a request to the restarted replica"
                )
                time.sleep(0.1)
        return self.replicas[index]


def port_of(server: RunningRegistry) -> int:
    return int(server.host.rsplit(":", 1)[1])


def established_to(port: int) -> int:
    """How many established TCP connections to loopback ``port`` the server side holds."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()  # sl, local address, remote address, state, ...
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


@contextlib.contextmanager
def scale_out(base: Path) -> Iterator[ScaleOut]:
    """Two replicas (one worker each) behind nginx; everything stopped, the database dropped and
    the S3 prefix emptied afterwards."""
    ports = [free_port(), free_port()]
    upstream = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    with contextlib.ExitStack() as stack:
        nginx = start_nginx(
            base / "nginx", {"front": SERVER_BLOCK}, f"  upstream dockyard {{\n{upstream}  }}"
        )
        stack.callback(nginx.stop)
        database_url = stack.enter_context(postgres_database())
        storage = s3_env()  # one prefix for both: the replicas share their blobs
        stack.callback(empty_prefix, storage)
        env = {
            **TOKEN_ENV,
            **storage,
            "DOCKYARD_WORKERS": "1",
            "DOCKYARD_ARCHIVE_JOURNAL": "true",
            "DOCKYARD_PUBLIC_URL": f"http://{nginx.host('front')}",
            "DOCKYARD_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        }
        bases = [base / "a", base / "b"]
        envs = [{**env, "DOCKYARD_PORT": str(port)} for port in ports]
        replicas: list[RunningRegistry] = []

        def stop_all() -> None:
            for replica in replicas:
                replica.stop()

        stack.callback(stop_all)
        replicas.append(start_dockyard("postgres", bases[0], database_url, envs[0]))
        (bases[1] / "data").mkdir(parents=True)
        os.symlink(replicas[0].data_dir / "keys", bases[1] / "data" / "keys")  # the same keys
        replicas.append(start_dockyard("postgres", bases[1], database_url, envs[1]))
        front = RunningRegistry(
            "postgres",
            nginx.host("front"),
            base / "nginx",
            base / "nginx" / "error.log",
            nginx.process,
            database_url,
        )
        yield ScaleOut(front, replicas, nginx, bases, database_url, envs)


def empty_prefix(storage: dict[str, str]) -> None:
    """Delete every object and abort every multipart upload under the S3 prefix (radosgw keeps
    its objects in memory)."""
    client = boto3.client(
        "s3",
        endpoint_url=storage["DOCKYARD_S3_ENDPOINT"],
        aws_access_key_id=storage["DOCKYARD_S3_ACCESS_KEY"],
        aws_secret_access_key=storage["DOCKYARD_S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    bucket, prefix = storage["DOCKYARD_S3_BUCKET"], storage["DOCKYARD_S3_PREFIX"]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
