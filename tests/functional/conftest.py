"""Fixtures for the real-client tests: the local test images and isolated clients.

Slow-to-start daemons (dockerd, containerd) are session-scoped and shared by every
registry backend; each test uses references that name its own registry, and removes
what it pulled before pulling again, so nothing from an earlier test can stand in for
a download. Every process started here is stopped by a finalizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import databases
from tests.support.clients import Buildah, ContainerdDaemon, DockerDaemon, Podman, Skopeo, make_oras_client
from tests.support.images import TestImages, build_test_images
from tests.support.oci import OciClient, oci_manifest, unique_repo
from tests.support.servers import RunningRegistry

# Replicas share a PostgreSQL database (SQLite is the one-machine deployment): these modules run
# on PostgreSQL alone, so without it among the test databases a run of the folder leaves them out.
POSTGRES_ONLY = ["test_archive_replicas.py", "test_scale_out.py"]
collect_ignore = [] if "postgres" in databases() else POSTGRES_ONLY


@pytest.fixture(scope="session")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> TestImages:
    """The busybox image, its multi-arch index (OCI layout) and a ``docker save`` archive."""
    return build_test_images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo")


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    tool = Podman(tmp_path / "podman")
    try:
        yield tool
    finally:
        tool.close()


@pytest.fixture
def buildah(tmp_path: Path) -> Iterator[Buildah]:
    tool = Buildah(tmp_path / "buildah")
    try:
        yield tool
    finally:
        tool.close()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    daemon = DockerDaemon.start(tmp_path_factory.mktemp("dockerd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerdDaemon]:
    daemon = ContainerdDaemon.start(tmp_path_factory.mktemp("containerd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def oras_client(registry: RunningRegistry) -> Any:
    """``oras.client.OrasClient`` for the registry under test (anonymous, plain HTTP)."""
    return make_oras_client(registry.host)


@pytest.fixture
def oci(registry: RunningRegistry) -> Iterator[OciClient]:
    """A Distribution API client (httpx) on the session's registry."""
    with OciClient.connect(registry.url) as client:
        yield client


@pytest.fixture
def repo(oci: OciClient, request: pytest.FixtureRequest) -> str:
    """A fresh repository holding one image tagged ``v1``."""
    name = unique_repo(request.node.name)
    oci.push(name, oci_manifest(), "v1")
    return name
