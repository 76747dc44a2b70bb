"""Regions in tests: a Dockyard with an ``eu`` default region (its own storage folder) and a
``us`` region (a second folder, or an S3 bucket), and the helpers to watch copies."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.support.catalog import CatalogUser
from tests.support.identity import ADMIN, ADMIN_PASSWORD, oci_as
from tests.support.oci import Blob, OciClient
from tests.support.servers import RunningRegistry, start_dockyard

COPY_DEADLINE = 120.0
TOKEN_MODE = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}


def region_env(us: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        **TOKEN_MODE,
        "DOCKYARD_DEFAULT_REGION": "eu",
        "DOCKYARD_REGIONS": json.dumps({"us": us}),
        **extra,
    }


def folder(path: Path) -> dict[str, Any]:
    return {"driver": "filesystem", "root": str(path)}


def regions_of(user: CatalogUser, image: str, version: str) -> dict[str, Any]:
    found: dict[str, Any] = user.api.call("GET", f"/images/{image}/versions/{version}/regions")
    return {str(r["region"]): dict(r) for r in found["regions"]}


def wait_available(user: CatalogUser, image: str, version: str, region: str) -> dict[str, Any]:
    end = time.monotonic() + COPY_DEADLINE
    while True:
        found: dict[str, Any] | None = regions_of(user, image, version).get(region)
        assert found is not None, f"{image}:{version} is not in {region}"
        assert found["status"] in ("copying", "available"), found
        if found["status"] == "available":
            return found
        assert time.monotonic() < end, f"{image}:{version} not available in {region}: {found}"
        time.sleep(0.1)  # polling the API, as a client does


def blob_file(root: Path, digest: str) -> Path:
    hexed = digest.split(":", 1)[1]
    return root / "blobs" / "sha256" / hexed[:2] / hexed / "data"


def wait_for_file(path: Path, deadline: float = COPY_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {deadline}s"
        time.sleep(0.05)


@contextlib.contextmanager
def replica_in(
    region: str, first: RunningRegistry, env: dict[str, str]
) -> Iterator[tuple[OciClient, CatalogUser]]:
    """A server on ``first``'s data and database running in ``region`` (``first`` stopped), with a
    registry client and an API client as the admin."""
    replica = start_dockyard(
        first.kind, first.data_dir.parent, first.database_url, {**env, "DOCKYARD_REGION": region}
    )
    with contextlib.ExitStack() as stack:
        stack.callback(replica.stop)
        oci = stack.enter_context(oci_as(replica, ADMIN, ADMIN_PASSWORD))
        admin = stack.enter_context(CatalogUser.connect(replica, ADMIN, ADMIN_PASSWORD))
        yield oci, admin


def assert_served(oci: OciClient, repository: str, blobs: Iterable[Blob], region: str) -> None:
    for blob in blobs:
        pulled = oci.get_blob(repository, blob.digest)
        assert pulled.status_code == 200
        assert pulled.content == blob.data
        assert pulled.headers["Dockyard-Region"] == region
