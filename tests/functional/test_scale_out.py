"""The scale-out form the README documents, run for real: two ``dockyard serve`` replicas (data
folders of their own, one PostgreSQL database, one S3 prefix on Ceph radosgw, the same keys,
``DOCKYARD_ARCHIVE_JOURNAL=true``) behind nginx balancing round-robin, no sticky sessions
(tests/support/balancer.py). Every client goes through nginx, as it would in production.

What it must show (issue #15): real clients push and pull through the balancer byte for byte;
an archive upload whose chunks land on both replicas finishes; a pull whose replica is killed
(SIGKILL) mid-stream is completed by the other with a Range request; and a replica killed in
the middle of a blob upload leaves no partial blob anyone can see or reference (the upload goes
on, on the survivor, from its last acknowledged chunk), while every push acknowledged before or
after reaches the audit log and the catalog, once. A killed replica is started again and
rejoins. Replicas share PostgreSQL (SQLite is the one-machine deployment), so this module is
collected only when PostgreSQL is among the test databases (tests/functional/conftest.py).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.archives import SavedImage, Uploads, docker_save, random_layer
from tests.support.balancer import ScaleOut, scale_out
from tests.support.catalog import CatalogUser, gzip_layer, image_config, new_user
from tests.support.clients import Skopeo
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, TokenAuth, oci_as
from tests.support.images import TestImages
from tests.support.oci import Blob, OciClient, assert_error, location_of, oci_manifest, sha256, with_query

BIG = 256 << 20
PART = 6 << 20  # a blob upload's chunk (over the S3 part size: the killed chunk was being stored)
ARCHIVE_CHUNK = 700 << 10  # smaller than the archive's layers, as in test_archive_replicas.py
CLIENT_IP = "203.0.113.7"  # the client, as a proxy in front of the balancer names it
OCTETS = {"Content-Type": "application/octet-stream"}
DEADLINE = 60.0


def wait_for(check: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while not (result := check()):
        assert time.monotonic() < end, f"{what} did not happen within {DEADLINE}s"
        time.sleep(0.1)
    return result


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleOut]:
    with scale_out(tmp_path_factory.mktemp("scale-out")) as running:
        yield running


@pytest.fixture(scope="module")
def user(cluster: ScaleOut) -> str:
    with Api.connect(cluster.front, ADMIN, ADMIN_PASSWORD) as admin:
        return new_user(admin, "scale")


@contextlib.contextmanager
def through_balancer(cluster: ScaleOut, user: str) -> Iterator[OciClient]:
    """The Distribution API as ``user``, through nginx (tokens too: the realm is nginx's)."""
    headers = {"X-Forwarded-For": CLIENT_IP}
    with httpx.Client(
        base_url=cluster.front.url, timeout=120, auth=TokenAuth(user, PASSWORD), headers=headers
    ) as http:
        yield OciClient(http)


def test_skopeo_pushes_through_the_balancer_and_copies_back_the_same_bytes(
    cluster: ScaleOut, user: str, skopeo: Skopeo, test_images: TestImages, tmp_path: Path
) -> None:
    ref = f"docker://{cluster.front.host}/{user}/busybox:1"
    creds = f"{user}:{PASSWORD}"
    skopeo.copy(test_images.image_ref, ref, extra=["--preserve-digests", "--dest-creds", creds])
    pulled = tmp_path / "pulled"
    skopeo.copy(ref, f"dir:{pulled}", extra=["--src-creds", creds])
    built = test_images.image
    assert (pulled / "manifest.json").read_bytes() == test_images.blob(built.manifest.digest)
    for blob in (built.config, built.layer):
        assert (pulled / blob.digest.split(":", 1)[1]).read_bytes() == test_images.blob(blob.digest)


def test_an_archive_upload_with_chunks_on_both_replicas_finishes_and_pulls_back(
    cluster: ScaleOut, user: str
) -> None:
    layers = [random_layer(3 << 20, f"data/{i}.bin") for i in range(3)]
    archive = docker_save([SavedImage(layers, ["spread:1"])])
    with CatalogUser.connect(cluster.front, user) as own:
        uploads = Uploads(own.http)
        archive_id = uploads.start(user, len(archive))
        served = []
        for offset in range(0, len(archive), ARCHIVE_CHUNK):
            end = min(offset + ARCHIVE_CHUNK, len(archive))
            answer = uploads.send(archive_id, archive[offset:end], offset, len(archive))
            assert answer.status_code == 202, (offset, answer.status_code, answer.text)
            assert answer.json()["offset"] == end
            served.append(cluster.replica_of(answer))
        assert set(served) == {0, 1}, f"round-robin sent every chunk to one replica: {served}"
        done = uploads.finish(archive_id)
        assert done["state"] == "done", done
        uploads.create(archive_id, version="1")
    with through_balancer(cluster, user) as oci:
        manifest = oci.get_manifest(f"{user}/spread", "1").json()
        pulled = [oci.get_blob(f"{user}/spread", d["digest"]).content for d in manifest["layers"]]
    assert [gzip.decompress(layer) for layer in pulled] == layers


def test_a_pull_cut_by_killing_its_replica_is_completed_by_the_other_with_a_range(
    cluster: ScaleOut, user: str
) -> None:
    repo = f"{user}/big"
    data = os.urandom(BIG)
    digest = sha256(data)
    with through_balancer(cluster, user) as oci:
        oci.push_blob(repo, data)
        del data
        pulled, received = hashlib.sha256(), 0
        with oci.http.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
            assert response.status_code == 200, response.read()[:300]
            victim = cluster.replica_of(response)
            chunks = response.iter_raw()
            for chunk in chunks:
                pulled.update(chunk)
                received += len(chunk)
                if received >= 32 << 20:
                    break
            cluster.kill(victim)
            received += read_until_cut(chunks, pulled.update)
        assert received < BIG, "the whole blob arrived before its replica was killed"
        try:
            with oci.http.stream(
                "GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={received}-"}
            ) as rest:
                assert rest.status_code == 206, rest.read()[:300]
                assert cluster.replica_of(rest) != victim
                assert rest.headers["Content-Range"] == f"bytes {received}-{BIG - 1}/{BIG}"
                for chunk in rest.iter_bytes():
                    pulled.update(chunk)
                    received += len(chunk)
        finally:
            cluster.restart(victim)
    assert (received, f"sha256:{pulled.hexdigest()}") == (BIG, digest)
    with oci_as(cluster.replicas[victim], user, PASSWORD) as direct:  # it rejoined
        head = direct.head_blob(repo, digest)
        assert (head.status_code, head.headers["Content-Length"]) == (200, str(BIG))


def read_until_cut(chunks: Iterator[bytes], update: Callable[[bytes], None]) -> int:
    """Read a pull whose replica was killed until its connection breaks; the bytes that came."""
    count = 0
    try:
        for chunk in chunks:
            update(chunk)
            count += len(chunk)
    except httpx.TransportError:  # nginx cut the connection short of the Content-Length
        return count
    raise AssertionError("the pull ended normally although the replica sending it was killed")


class Pushes:
    """Small images pushed through the balancer, each acknowledged (201) by some replica."""

    def __init__(self, cluster: ScaleOut, oci: OciClient, user: str) -> None:
        self.cluster, self.oci, self.user = cluster, oci, user
        self.acknowledged: dict[str, str] = {}  # repository: manifest digest
        self.by: set[int] = set()  # the replicas that acknowledged one

    def push(self) -> None:
        repo = f"{self.user}/small-{len(self.acknowledged)}"
        manifest = oci_manifest(image_config(), [gzip_layer(repo)])
        answer = self.oci.push(repo, manifest, "1")
        self.acknowledged[repo] = manifest.digest
        self.by.add(self.cluster.replica_of(answer))


def test_a_replica_killed_in_a_blob_upload_leaves_no_partial_blob_and_loses_no_acknowledged_push(
    cluster: ScaleOut, user: str
) -> None:
    repo = f"{user}/interrupted"
    blob = Blob(os.urandom(3 * PART))
    # Two clients: the pushes' tokens (of other repositories) never replace the upload's own.
    with through_balancer(cluster, user) as oci, through_balancer(cluster, user) as pusher:
        pushes = Pushes(cluster, pusher, user)
        while pushes.by != {0, 1}:  # each replica has acknowledged a push
            assert len(pushes.acknowledged) < 10, "round-robin never reached both replicas"
            pushes.push()
        first = oci.http.patch(
            location_of(oci.start_upload(repo)),
            content=blob.data[:PART],
            headers={**OCTETS, "Content-Range": f"0-{PART - 1}"},
        )
        assert first.status_code == 202, first.text
        pushes.push()  # while the upload is open
        victim, outcome = kill_in_the_middle_of_a_chunk(cluster, oci.http, location_of(first), blob.data)
        assert isinstance(outcome, Exception) or outcome.status_code == 502, outcome
        survivor = 1 - victim
        try:
            pushes.push()  # after the kill: the survivor takes everything

            # No partial blob: not through the balancer, not on the survivor, not referable.
            assert oci.head_blob(repo, blob.digest).status_code == 404
            with oci_as(cluster.replicas[survivor], user, PASSWORD) as direct:
                assert direct.head_blob(repo, blob.digest).status_code == 404
            config = image_config()
            oci.push_blob(repo, config)  # the one blob the manifest lacks is the interrupted one
            refused = oci.put_manifest(repo, "1", oci_manifest(config, [blob]))
            assert_error(refused, (400, 404), "MANIFEST_BLOB_UNKNOWN")  # Dockyard: 404 (end-7 in the spec)
            assert refused.json()["errors"][0]["detail"] == {"digest": blob.digest}

            # The upload goes on, on the survivor, where its last acknowledged chunk ended.
            status = oci.http.get(location_of(first))
            assert (status.status_code, status.headers["Range"]) == (204, f"0-{PART - 1}"), status.text
            rest = oci.http.patch(
                location_of(first),
                content=blob.data[PART:],
                headers={**OCTETS, "Content-Range": f"{PART}-{len(blob.data) - 1}"},
            )
            assert rest.status_code == 202, rest.text
            done = oci.http.put(with_query(location_of(rest), digest=blob.digest))
            assert done.status_code == 201, done.text
            manifest = oci_manifest(config, [blob])
            oci.push_manifest(repo, "1", manifest)
            pushes.acknowledged[repo] = manifest.digest
            assert oci.get_blob(repo, blob.digest).content == blob.data

            assert_recorded(cluster, pushes.acknowledged)
        finally:
            cluster.restart(victim)
        with oci_as(cluster.replicas[victim], user, PASSWORD) as direct:  # it rejoined
            for repository, digest in pushes.acknowledged.items():
                assert direct.get_manifest(repository, "1").headers["Docker-Content-Digest"] == digest


def kill_in_the_middle_of_a_chunk(
    cluster: ScaleOut, http: httpx.Client, location: str, data: bytes
) -> tuple[int, httpx.Response | Exception]:
    """Send the upload's second chunk; when half of it is on its way, SIGKILL the replica taking
    it in. (The killed replica, and what the client got: a 502 or a broken connection.)"""
    half_sent, go_on = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        yield data[PART : PART + PART // 2]
        half_sent.set()
        go_on.wait(DEADLINE)
        yield data[PART + PART // 2 : 2 * PART]

    outcome: list[httpx.Response | Exception] = []

    def send() -> None:
        headers = {**OCTETS, "Content-Range": f"{PART}-{2 * PART - 1}", "Content-Length": str(PART)}
        try:
            outcome.append(http.patch(location, content=body(), headers=headers))
        except httpx.TransportError as error:
            outcome.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert half_sent.wait(DEADLINE), "the chunk's first half was never sent"
        victim = cluster.replica_receiving()
        cluster.kill(victim)
    finally:
        go_on.set()
        sender.join(DEADLINE)
    assert outcome, "the interrupted chunk's request never ended"
    return victim, outcome[0]


def assert_recorded(cluster: ScaleOut, acknowledged: dict[str, str]) -> None:
    """Every acknowledged push is in the audit log once (with the client's address from
    X-Forwarded-For) and in the catalog, as read through the balancer."""
    targets = {f"{repo}@{digest}" for repo, digest in acknowledged.items()}
    with CatalogUser.connect(cluster.front, ADMIN, ADMIN_PASSWORD) as admin:

        def pushes() -> list[Any]:
            found = admin.api.call("GET", "/audit", params={"action": "manifest.push", "limit": 1000})
            mine = [entry for entry in found if entry["target"] in targets]
            return mine if {entry["target"] for entry in mine} == targets else []

        entries = wait_for(pushes, "the audit rows of every acknowledged push")
        assert sorted(entry["target"] for entry in entries) == sorted(targets)  # once each
        assert {entry["client_ip"] for entry in entries} == {CLIENT_IP}
        for repo, digest in acknowledged.items():

            def version(repo: str = repo) -> Any:
                found = admin.http.get(f"/images/{repo}/versions/1")
                assert found.status_code in (200, 404), found.text
                return found.json() if found.status_code == 200 else None

            assert wait_for(version, f"{repo}:1 in the catalog")["digest"] == digest
