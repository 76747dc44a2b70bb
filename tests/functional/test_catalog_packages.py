"""The software inside: images built here with buildah from small root filesystems (Debian's
static busybox plus the package databases of a Debian, Alpine, RPM-based (an SQLite rpmdb and an
older BerkeleyDB one) and conda image),
pushed to Dockyard by buildah signed in as their owner; once inspected, their packages are read
through the API and the CLI, as users read them. A layer deleting dpkg's status (a whiteout
made by buildah's own ``RUN rm``) leaves no deb packages."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.catalog import CatalogUser, new_user
from tests.support.cli import Cli
from tests.support.clients import Buildah, containers_login
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.package_dbs import (
    APK_INSTALLED,
    DPKG_STATUS,
    conda_record,
    make_rpmdb,
    make_rpmdb_bdb,
    python_metadata,
    r_description,
    rpm_headers,
)
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients

SCAN_DEADLINE = 60.0
Json = dict[str, Any]
SITE = "usr/lib/python3/dist-packages"


def rootfs(root: Path, files: dict[str, str | bytes]) -> Path:
    """A build context whose ``rootfs/`` is busybox (``/bin/sh``) plus ``files``."""
    (root / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "rootfs" / "bin" / "busybox")
    (root / "rootfs" / "bin" / "sh").symlink_to("busybox")
    (root / "rootfs" / "bin" / "rm").symlink_to("busybox")
    for name, content in files.items():
        path = root / "rootfs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\n")
    return root


@pytest.fixture(scope="module")
def owner(token_registry: RunningRegistry) -> Iterator[CatalogUser]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        name = new_user(admin, "packager")
    with CatalogUser.connect(token_registry, name) as user:
        yield user


@pytest.fixture(scope="module")
def pushed(
    token_registry: RunningRegistry, owner: CatalogUser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Build and push ``<owner>/distros:{debian,alpine,fedora,centos7,conda,debian-cleared}``;
    the image name."""
    base = tmp_path_factory.mktemp("packages")
    el7 = base / "rpm-el7"
    el7_headers = rpm_headers(
        el7, make_rpmdb(el7, [("bash", 0, "4.2.46", "34.el7"), ("openssl-libs", 1, "1.0.2k", "26.el7_9")])
    )
    buildah = Buildah(base / "buildah")
    image = f"{owner.name}/distros"
    try:
        assert (
            "Login Succeeded" in containers_login(buildah, token_registry.host, owner.name, PASSWORD).stdout
        )
        contexts: dict[str, dict[str, str | bytes]] = {
            "debian": {
                "var/lib/dpkg/status": DPKG_STATUS,
                f"{SITE}/six-1.16.0.dist-info/METADATA": python_metadata("six", "1.16.0"),
                "usr/lib/R/site-library/jsonlite/DESCRIPTION": r_description("jsonlite", "1.8.8"),
            },
            "alpine": {"lib/apk/db/installed": APK_INSTALLED},
            "fedora": {
                "var/lib/rpm/rpmdb.sqlite": make_rpmdb(
                    base / "rpm", [("bash", 0, "5.2.26", "3.fc40"), ("openssl-libs", 1, "3.2.1", "2.fc40")]
                )
            },
            "centos7": {"var/lib/rpm/Packages": (make_rpmdb_bdb(el7, el7_headers) / "Packages").read_bytes()},
            "conda": {
                "opt/conda/conda-meta/numpy-1.26.4-py311_0.json": conda_record("numpy", "1.26.4"),
                "usr/local/conda-meta/samtools-1.19-h50ea8bc_0.json": conda_record("samtools", "1.19"),
            },
        }
        for tag, files in contexts.items():
            buildah.bud(rootfs(base / tag, files), f"localhost/distros:{tag}")
        cleared = base / "cleared"
        cleared.mkdir()
        (cleared / "Dockerfile").write_text("FROM localhost/distros:debian\nRUN rm /var/lib/dpkg/status\n")
        buildah.bud(cleared, "localhost/distros:debian-cleared", "--layers")
        for tag in (*contexts, "debian-cleared"):
            buildah.push(f"localhost/distros:{tag}", f"docker://{token_registry.host}/{image}:{tag}")
        yield image
    finally:
        buildah.close()


def scanned(owner: CatalogUser, image: str, version: str, **params: Any) -> Json:
    """The version's packages once inspected and scanned (polled with a deadline: both happen in
    the background after the push)."""
    owner.wait_inspected(image, version)
    deadline = time.monotonic() + SCAN_DEADLINE
    while True:
        response = owner.http.get(f"/images/{image}/versions/{version}/packages", params=params)
        assert response.status_code == 200, response.text
        found: Json = response.json()
        if found["scan"] is not None:
            return found
        assert time.monotonic() < deadline, f"{image}:{version} was not scanned in {SCAN_DEADLINE}s"
        time.sleep(0.05)


def triples(found: Json) -> list[tuple[str, str, str]]:
    return [(p["ecosystem"], p["name"], p["version"]) for p in found["packages"]]


def test_a_debian_image_s_packages(owner: CatalogUser, pushed: str) -> None:
    found = scanned(owner, pushed, "debian")

    assert found["scan"]["state"] == "succeeded", found["scan"]
    assert triples(found) == [
        ("deb", "base-files", "12.4+deb12u5"),
        ("deb", "libssl3", "3.0.11-1~deb12u2"),
        ("python", "six", "1.16.0"),
        ("r", "jsonlite", "1.8.8"),
    ]
    assert {p["platform"] for p in found["packages"]} == {""}


def test_alpine_rpm_and_conda_images(owner: CatalogUser, pushed: str) -> None:
    assert triples(scanned(owner, pushed, "alpine")) == [
        ("apk", "busybox", "1.36.1-r15"),
        ("apk", "musl", "1.2.4_git20230717-r4"),
    ]
    assert triples(scanned(owner, pushed, "fedora")) == [
        ("rpm", "bash", "5.2.26-3.fc40"),
        ("rpm", "openssl-libs", "1:3.2.1-2.fc40"),
    ]
    assert triples(scanned(owner, pushed, "conda", ecosystem="conda")) == [
        ("conda", "numpy", "1.26.4"),
        ("conda", "samtools", "1.19"),
    ]


def test_an_older_rpm_image_s_berkeley_db_is_read_whole(owner: CatalogUser, pushed: str) -> None:
    found = scanned(owner, pushed, "centos7")

    assert found["scan"]["state"] == "succeeded", found["scan"]
    assert triples(found) == [
        ("rpm", "bash", "4.2.46-34.el7"),
        ("rpm", "openssl-libs", "1:1.0.2k-26.el7_9"),
    ]


def test_a_layer_deleting_the_dpkg_status_leaves_no_deb_packages(
    token_registry: RunningRegistry, owner: CatalogUser, pushed: str
) -> None:
    found = scanned(owner, pushed, "debian-cleared")

    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        manifest = oci.get_manifest(pushed, "debian-cleared").json()
        layers = [layer["digest"] for layer in manifest["layers"]]
        assert len(layers) == 2  # the debian layer, and the one whose whiteout deletes the status
        upper = gzip.decompress(oci.get_blob(pushed, layers[1]).content)
    with tarfile.open(fileobj=io.BytesIO(upper)) as tar:
        assert "var/lib/dpkg/.wh.status" in [m.name.removeprefix("./") for m in tar.getmembers()]

    assert found["scan"]["state"] == "succeeded"
    assert triples(found) == [("python", "six", "1.16.0"), ("r", "jsonlite", "1.8.8")]


def test_the_api_pages_and_bounds_its_inputs(owner: CatalogUser, pushed: str) -> None:
    first = scanned(owner, pushed, "debian", limit=2)
    assert len(first["packages"]) == 2
    rest = owner.http.get(f"/images/{pushed}/versions/debian/packages", params={"last": first["next"]}).json()
    assert triples(first) + triples(rest) == triples(scanned(owner, pushed, "debian"))
    assert rest["next"] is None
    for params in ({"limit": 501}, {"ecosystem": "npm"}, {"q": "x" * 300}, {"last": "%%"}):
        response = owner.http.get(f"/images/{pushed}/versions/debian/packages", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_others_cannot_read_a_private_image_s_packages(
    token_registry: RunningRegistry, owner: CatalogUser, pushed: str
) -> None:
    scanned(owner, pushed, "debian")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        other = new_user(admin, "stranger")
    with CatalogUser.connect(token_registry, other) as stranger:
        response = stranger.http.get(f"/images/{pushed}/versions/debian/packages")
    assert response.status_code == 404, response.text


def test_the_cli_lists_a_version_s_packages(
    token_registry: RunningRegistry, owner: CatalogUser, pushed: str, tmp_path: Path
) -> None:
    scanned(owner, pushed, "fedora")
    cli = Cli(token_registry, tmp_path / "cli.toml")
    cli.ok("login", token_registry.url, "-u", owner.name, "--password-stdin", stdin=PASSWORD + "\n")

    out = cli.ok("image", "packages", f"{pushed}:fedora")

    assert f"{pushed}:fedora: 2 package(s), scan succeeded" in out
    assert "openssl-libs" in out
    assert "1:3.2.1-2.fc40" in out
    listed = cli.json("image", "packages", f"{pushed}:debian", "--ecosystem", "python")
    assert triples(listed) == [("python", "six", "1.16.0")]
    assert "not NAME:VERSION" in cli.fails("image", "packages", pushed).stderr
