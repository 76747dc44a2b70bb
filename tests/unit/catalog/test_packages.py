"""The package index of a version (:mod:`dockyard.catalog.packages`), on a real metadata
database (SQLite and PostgreSQL) and the memory storage driver: images are pushed with layers
made of real package databases, the inspection job runs, the rows are read back."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from dockyard.app.services import Services
from dockyard.archive.packages import Ecosystem
from dockyard.catalog.inspections import JOB_KIND, PACKAGES_JOB
from dockyard.catalog.package_scan import SCANNER, ScanLimits
from dockyard.catalog.packages import PackagePage, ScanState, versions_with_package
from dockyard.catalog.tables import image_versions, version_package_scans, version_packages
from dockyard.errors import Invalid, NotFound
from dockyard.jobs.worker import Worker
from tests.support.catalog import gzip_layer, image_config
from tests.support.oci import Blob, oci_index, oci_manifest
from tests.support.package_dbs import (
    APK_INSTALLED,
    DISTROLESS_STATUS_D,
    DPKG_STATUS,
    conda_record,
    layer,
    make_rpmdb,
    python_metadata,
    r_description,
)
from tests.unit.catalog.factories import People
from tests.unit.registry.factories import push_manifest

IMAGE = "lab/tool"
SITE = "usr/lib/python3/dist-packages"


async def pushed(services: Services, *layers: bytes, tag: str = "v1") -> None:
    """Push an image of these (gzip tar) layers as ``lab/tool:<tag>`` and run its inspection."""
    blobs = [Blob(data) for data in layers]
    await push_manifest(services, IMAGE, oci_manifest(image_config("amd64"), blobs), tag)
    await inspect_all(services)


async def inspect_all(services: Services) -> None:
    worker = Worker(services.jobs, {JOB_KIND: services.inspections.handle}, lease_seconds=30.0)
    while await worker.run_once():
        pass


async def listed(services: Services, people: People, tag: str = "v1", **params: object) -> PackagePage:
    return await services.packages.list(people.reader, IMAGE, tag, **params)  # type: ignore[arg-type]


def scan_of(page: PackagePage) -> ScanState:
    assert page.scan is not None, "not scanned"
    return page.scan


def triples(page: PackagePage) -> list[tuple[str, str, str]]:
    return [(p.ecosystem, p.name, p.version) for p in page.packages]


DEBIAN = layer(
    {
        "var/lib/dpkg/status": DPKG_STATUS,
        f"{SITE}/Typing_Extensions-4.9.0.dist-info/METADATA": python_metadata("Typing_Extensions", "4.9.0"),
        f"{SITE}/six-1.16.0.egg-info/PKG-INFO": python_metadata("six", "1.16.0"),
        "usr/local/lib/R/site-library/jsonlite/DESCRIPTION": r_description("jsonlite", "1.8.8"),
        "etc/hostname": "x\n",
    },
    symlinks={"bin/sh": "/bin/busybox"},  # absolute, as in every real image: never followed
)
CONDA = layer(
    {
        "opt/conda/conda-meta/numpy-1.26.4-py311_0.json": conda_record("numpy", "1.26.4"),
        "opt/conda/conda-meta/history": "==> 2024-01-01 <==\n",
        "opt/conda/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA": python_metadata(
            "numpy", "1.26.4"
        ),
    }
)


async def test_the_packages_of_every_ecosystem_in_every_layer_are_indexed(
    services: Services, people: People
) -> None:
    await pushed(services, DEBIAN, CONDA)

    page = await listed(services, people)

    scan = scan_of(page)
    assert (scan.state, scan.packages, scan.detail) == ("succeeded", 7, None)
    assert scan.bytes_read > len(DPKG_STATUS)
    assert triples(page) == [
        ("conda", "numpy", "1.26.4"),
        ("deb", "base-files", "12.4+deb12u5"),
        ("deb", "libssl3", "3.0.11-1~deb12u2"),
        ("python", "numpy", "1.26.4"),
        ("python", "six", "1.16.0"),
        ("python", "Typing_Extensions", "4.9.0"),
        ("r", "jsonlite", "1.8.8"),
    ]
    assert {p.platform for p in page.packages} == {""}
    assert triples(await listed(services, people, ecosystem=Ecosystem.PYTHON, query="typing")) == [
        ("python", "Typing_Extensions", "4.9.0")
    ]
    assert triples(await listed(services, people, query="NUM")) == [
        ("conda", "numpy", "1.26.4"),
        ("python", "numpy", "1.26.4"),
    ]


async def test_pages_follow_each_other(services: Services, people: People) -> None:
    await pushed(services, DEBIAN, CONDA)
    seen: list[tuple[str, str, str]] = []
    last = None
    for _ in range(10):
        page = await listed(services, people, limit=3, last=last)
        seen += triples(page)
        last = page.next
        if last is None:
            break
    assert seen == triples(await listed(services, people))
    with pytest.raises(Invalid):
        await listed(services, people, last="not-a-page")


async def test_search_finds_the_versions_holding_a_package(services: Services, people: People) -> None:
    await pushed(services, DEBIAN)
    async with services.db.read() as conn:
        version_id = (await conn.execute(select(image_versions.c.id))).scalar_one()
        assert await versions_with_package(conn, "typing-extensions") == [(version_id, "python", "4.9.0", "")]
        assert await versions_with_package(conn, "libssl3", "deb") == [
            (version_id, "deb", "3.0.11-1~deb12u2", "")
        ]
        assert await versions_with_package(conn, "libssl3", "rpm") == []


async def test_a_whiteout_in_an_upper_layer_removes_the_dpkg_database(
    services: Services, people: People
) -> None:
    await pushed(services, DEBIAN, layer({"var/lib/dpkg/.wh.status": b""}))

    page = await listed(services, people, ecosystem=Ecosystem.DEB)

    assert page.packages == []
    assert scan_of(page).state == "succeeded"


async def test_an_opaque_folder_hides_the_lower_conda_environment(services: Services, people: People) -> None:
    upper = layer(
        {
            "opt/conda/.wh..wh..opq": b"",
            "opt/conda/conda-meta/scipy-1.12.0-py311_0.json": conda_record("scipy", "1.12.0"),
        }
    )
    await pushed(services, CONDA, upper)

    assert triples(await listed(services, people)) == [("conda", "scipy", "1.12.0")]


async def test_alpine_distroless_and_rpm_images(services: Services, people: People, tmp_path: object) -> None:
    rpmdb = make_rpmdb(tmp_path, [("bash", 0, "5.2.26", "3.fc40"), ("openssl-libs", 1, "3.2.1", "2.fc40")])  # type: ignore[arg-type]
    await pushed(services, layer({"lib/apk/db/installed": APK_INSTALLED}), tag="alpine")
    await pushed(
        services,
        layer({f"var/lib/dpkg/status.d/{k}": v for k, v in DISTROLESS_STATUS_D.items()}),
        tag="distroless",
    )
    await pushed(services, layer({"var/lib/rpm/rpmdb.sqlite": rpmdb}), tag="fedora")

    assert triples(await listed(services, people, "alpine")) == [
        ("apk", "busybox", "1.36.1-r15"),
        ("apk", "musl", "1.2.4_git20230717-r4"),
    ]
    assert triples(await listed(services, people, "distroless")) == [
        ("deb", "base-files", "12.4+deb12u5"),
        ("deb", "tzdata", "2024a-0+deb12u1"),
    ]
    assert triples(await listed(services, people, "fedora")) == [
        ("rpm", "bash", "5.2.26-3.fc40"),
        ("rpm", "openssl-libs", "1:3.2.1-2.fc40"),
    ]


async def test_each_platform_of_an_index_is_read(services: Services, people: People) -> None:
    amd64 = oci_manifest(image_config("amd64"), [Blob(layer({"lib/apk/db/installed": APK_INSTALLED}))])
    arm64 = oci_manifest(
        image_config("arm64"), [Blob(layer({"lib/apk/db/installed": "P:musl\nV:1.2.5-r0\n"}))]
    )
    await push_manifest(services, IMAGE, oci_index([amd64, arm64]), "multi")
    await inspect_all(services)

    page = await listed(services, people, "multi", query="musl")

    assert [(p.name, p.version, p.platform) for p in page.packages] == [
        ("musl", "1.2.4_git20230717-r4", "linux/amd64"),
        ("musl", "1.2.5-r0", "linux/arm64"),
    ]


async def test_what_is_not_read_makes_the_scan_partial(services: Services, people: People) -> None:
    services.packages.limits = ScanLimits(per_file=1000)
    await pushed(
        services,
        layer(
            {
                "var/lib/dpkg/status": DPKG_STATUS,
                "var/lib/rpm/Packages": b"\0" * 64,
                "usr/lib/sysimage/rpm/Packages.db": b"\0" * 64,
            }
        ),
    )

    page = await listed(services, people)

    assert page.packages == []
    assert scan_of(page).state == "partial"
    detail = scan_of(page).detail or ""
    size = len(DPKG_STATUS.encode())
    assert f"var/lib/dpkg/status ({size:,} bytes) was not read: over the limit per file" in detail
    assert "usr/lib/sysimage/rpm/Packages.db: the rpm-ndb rpm database format is not read" in detail
    assert "var/lib/rpm/Packages: a Berkeley DB file shorter than one page" in detail


async def test_a_layer_that_is_not_a_tar_fails_the_scan_not_the_version(
    services: Services, people: People
) -> None:
    await pushed(services, gzip_layer("not a tar").data)

    page = await listed(services, people)

    assert page.packages == []
    assert scan_of(page).state == "failed"
    assert "could not be read" in (scan_of(page).detail or "")
    assert (await services.catalog.version(people.reader, IMAGE, "v1")).status == "available"


async def test_a_push_again_replaces_the_rows(services: Services, people: People) -> None:
    await pushed(services, DEBIAN)
    await pushed(services, CONDA)

    assert [p.ecosystem for p in (await listed(services, people)).packages] == ["conda", "python"]


async def test_only_who_may_read_the_version_sees_its_packages(services: Services, people: People) -> None:
    await pushed(services, DEBIAN)
    with pytest.raises(NotFound):
        await services.packages.list(people.outsider, IMAGE, "v1")
    with pytest.raises(NotFound):
        await services.packages.list(people.reader, IMAGE, "v2")


async def test_versions_inspected_before_the_index_are_indexed_by_the_sweep(
    services: Services, people: People
) -> None:
    await pushed(services, DEBIAN)
    async with services.db.write() as conn:  # as if inspected before the package index existed
        await conn.execute(delete(version_package_scans))
        await conn.execute(delete(version_packages))

    assert await services.inspections.backfill_packages() == 1
    assert await services.inspections.backfill_packages() == 0  # queued once
    worker = Worker(services.jobs, {PACKAGES_JOB: services.inspections.handle_packages}, lease_seconds=30.0)
    assert await worker.run_once()

    page = await listed(services, people)
    assert scan_of(page).state == "succeeded"
    assert len(page.packages) == 5
    assert await services.inspections.backfill_packages() == 0


async def test_scans_an_older_scanner_left_partial_are_made_again(services: Services, people: People) -> None:
    """After an upgrade that reads more (the scanner's version went up), the sweep scans again
    the versions an older scanner left partial or failed; a complete scan stays."""
    await pushed(services, DEBIAN)
    await pushed(services, CONDA, tag="v2")
    async with services.db.write() as conn:  # both scanned by the scanner before, one partially
        await conn.execute(update(version_package_scans).values(scanner=SCANNER - 1))
        named_v1 = select(image_versions.c.id).where(image_versions.c.version == "v1")
        v1 = (await conn.execute(named_v1)).scalar_one()
        await conn.execute(
            update(version_package_scans)
            .where(version_package_scans.c.version_id == v1)
            .values(state="partial", detail="var/lib/rpm/Packages: not read", packages=0)
        )
        await conn.execute(delete(version_packages).where(version_packages.c.version_id == v1))

    assert await services.inspections.backfill_packages() == 1  # v1 alone
    worker = Worker(services.jobs, {PACKAGES_JOB: services.inspections.handle_packages}, lease_seconds=30.0)
    assert await worker.run_once()
    assert not await worker.run_once()

    page = await listed(services, people)
    assert scan_of(page).state == "succeeded"
    assert len(page.packages) == 5
    async with services.db.read() as conn:
        scans = select(version_package_scans.c.version_id, version_package_scans.c.scanner)
        scanners = dict((await conn.execute(scans)).all())
    assert scanners[v1] == SCANNER
    assert sorted(scanners.values()) == [SCANNER - 1, SCANNER]  # v2's complete scan was kept
    assert await services.inspections.backfill_packages() == 0
