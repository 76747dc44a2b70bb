"""Import by URL survives a crash: the server is killed (SIGKILL) half-way through a big layer,
restarted, and the job resumes through the queue's lease expiry; blobs committed before the
kill are not fetched again (counted in the upstream's access log), and the result is byte
identical to the upstream.

The upstream is Debian's ``docker-registry`` behind nginx, which limits the download rate so
that "half-way" lasts long enough to be observed (the test polls the job's progress).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.functional.test_catalog_import import upstream_content, walk
from tests.support.catalog import CatalogUser, new_user
from tests.support.clients import Skopeo
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.images import canonical_json
from tests.support.servers import kill_hard, private_dockyard
from tests.support.upstreams import OCI_INDEX, REF_NAME, _Layout, start_nginx, start_upstream_registry

pytestmark = pytest.mark.clients

BIG = 96 * 1024 * 1024
RATE = "16m"  # nginx limit_rate: the big layer takes ~6 s
LAYER = "application/vnd.oci.image.layer.v1.tar"
ENV = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "DOCKYARD_JOB_LEASE_SECONDS": "3",
    "DOCKYARD_JOB_RECOVER_SECONDS": "0.5",
}


def two_platform_layout(root: Path) -> tuple[Path, str, list[str], str]:
    """An index of amd64 (config, small layer, big random layer) and arm64 (config, layer).
    Returns the layout, the index digest, the amd64 blobs before the big one, the big one."""
    layout = _Layout(root)
    small = layout.put(LAYER, b"small amd64 layer\n" * 100)
    big = layout.put(LAYER, os.urandom(BIG))
    amd_config = layout.put(
        "application/vnd.oci.image.config.v1+json",
        canonical_json(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ),
    )
    amd = layout.manifest(amd_config, [small, big])
    arm_layer = layout.put(LAYER, b"arm64 layer\n" * 100)
    arm_config = layout.put(
        "application/vnd.oci.image.config.v1+json",
        canonical_json(
            {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ),
    )
    arm = layout.manifest(arm_config, [arm_layer])
    entries = [
        {**amd.to_dict(), "platform": {"architecture": "amd64", "os": "linux"}},
        {**arm.to_dict(), "platform": {"architecture": "arm64", "os": "linux"}},
    ]
    index = layout.put(
        OCI_INDEX, canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    )
    top = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**index.to_dict(), "annotations": {REF_NAME: "v1"}}],
    }
    (layout.root / "index.json").write_bytes(canonical_json(top))
    return layout.root, index.digest, [amd_config.digest, small.digest], big.digest


def fetches(access_log: Path, digest: str) -> int:
    """GETs of the blob ``digest`` that nginx answered (any status but 404)."""
    text = access_log.read_text() if access_log.exists() else ""
    return sum(1 for line in text.splitlines() if f"GET /v2/library/big/blobs/{digest} " in line)


def progress_of(user: CatalogUser, image: str, version: str) -> dict[str, Any]:
    found: dict[str, Any] = user.api.call("GET", f"/images/{image}/versions/{version}/import")
    return found


def test_an_import_killed_half_way_resumes_and_is_byte_identical(db_kind: str, tmp_path: Path) -> None:
    layout, index_digest, early, big = two_platform_layout(tmp_path / "layout")
    registry = start_upstream_registry(tmp_path / "upstream")
    try:
        nginx = start_nginx(
            tmp_path / "nginx",
            {"slow": f"    location / {{ proxy_pass http://{registry.host}; limit_rate {RATE}; }}"},
        )
        try:
            upstream = nginx.host("slow")
            Skopeo(tmp_path / "skopeo").copy(
                f"oci:{layout}:v1",
                f"docker://{registry.host}/library/big:v1",
                all_images=True,
                extra=["--preserve-digests"],
            )
            run_import(db_kind, tmp_path, upstream, index_digest, early, big, nginx.base / "access.log")
        finally:
            nginx.stop()
    finally:
        registry.stop()


def run_import(
    db_kind: str, tmp_path: Path, upstream: str, index_digest: str, early: list[str], big: str, log: Path
) -> None:
    with private_dockyard(db_kind, tmp_path / "dockyard", ENV) as (server, restart):
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            name = new_user(admin, "resume")
        with CatalogUser.connect(server, name) as user:
            created = user.register(user.name, f"{upstream}/library/big:v1")
            image, version = created["image"], created["version"]
            user.api.call("POST", f"/images/{image}/versions/{version}/import", 202, json={})
            deadline = time.monotonic() + 60
            while True:  # until the big layer is partly copied
                progress = progress_of(user, image, version)["progress"]
                if progress.get("bytes_done", 0) >= 1024 * 1024:
                    break
                assert time.monotonic() < deadline, progress
                time.sleep(0.05)
            assert progress["bytes_done"] < progress["bytes_total"], progress
        kill_hard(server)
        for digest in early:
            assert fetches(log, digest) == 1, digest
        # nginx logs the cut-off request once it notices the client went away.
        deadline = time.monotonic() + 30
        while fetches(log, big) < 1:
            assert time.monotonic() < deadline, "nginx never logged the interrupted download"
            time.sleep(0.05)
        assert fetches(log, big) == 1
        again = restart()
        with CatalogUser.connect(again, name) as user:
            deadline = time.monotonic() + 120
            while (found := progress_of(user, image, version))["state"] == "running":
                assert time.monotonic() < deadline, found
                time.sleep(0.1)
            assert found["state"] == "succeeded", found
            assert found["digest"] == index_digest
            assert found["progress"]["blobs_skipped"] >= len(early)
            assert user.version(image, version)["source"] == "internal"
            # Committed before the kill: not fetched again; the big layer: once more, whole.
            assert [fetches(log, digest) for digest in early] == [1] * len(early)
            assert fetches(log, big) == 2
            expected = upstream_content(upstream, "library/big", "v1")
            served: dict[str, bytes] = {}
            with oci_as(again, user.name, PASSWORD) as oci:
                walk(
                    lambda path: (
                        oci.get_manifest(image, path.split("/manifests/")[1])
                        if "/manifests/" in path
                        else oci.get_blob(image, path.split("/blobs/")[1])
                    ),
                    version,
                    served,
                )
            assert served.keys() == expected.keys()
            assert all(served[d] == expected[d] for d in expected)
