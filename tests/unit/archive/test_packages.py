"""The package parsers on the files package managers write (see tests/support/package_dbs.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dockyard.archive.packages import (
    Kind,
    Package,
    kind_of,
    name_key,
    parse_apk_installed,
    parse_conda_meta,
    parse_dpkg_status,
    parse_python_metadata,
    parse_r_description,
)
from dockyard.archive.rpmdb import RpmFormatError, parse_header, parse_rpmdb_sqlite
from tests.support.package_dbs import (
    APK_INSTALLED,
    DISTROLESS_STATUS_D,
    DPKG_STATUS,
    conda_record,
    make_rpmdb,
    python_metadata,
    r_description,
)


def test_dpkg_status_lists_installed_packages_only() -> None:
    assert parse_dpkg_status(DPKG_STATUS.encode()) == [
        Package("deb", "base-files", "12.4+deb12u5"),
        Package("deb", "libssl3", "3.0.11-1~deb12u2"),
    ]  # vim-tiny left only its config files


def test_distroless_status_d_stanzas_have_no_status() -> None:
    found = [parse_dpkg_status(text.encode(), require_status=False) for text in DISTROLESS_STATUS_D.values()]
    assert found == [
        [Package("deb", "base-files", "12.4+deb12u5")],
        [Package("deb", "tzdata", "2024a-0+deb12u1")],
    ]


def test_apk_installed() -> None:
    assert parse_apk_installed(APK_INSTALLED.encode()) == [
        Package("apk", "musl", "1.2.4_git20230717-r4"),
        Package("apk", "busybox", "1.36.1-r15"),
    ]


def test_conda_meta_record() -> None:
    assert parse_conda_meta(conda_record("numpy", "1.26.4").encode()) == [Package("conda", "numpy", "1.26.4")]
    assert parse_conda_meta(b"{not json") == []
    assert parse_conda_meta(b'["a list"]') == []


def test_python_metadata_reads_the_headers_not_the_body() -> None:
    found = parse_python_metadata(python_metadata("Typing_Extensions", "4.9.0").encode())
    assert found == [Package("python", "Typing_Extensions", "4.9.0")]
    assert found[0].name_key == "typing-extensions"
    assert name_key("python", "zope.Interface__x") == "zope-interface-x"
    assert name_key("deb", "Lib_SSL.3") == "lib_ssl.3"


def test_r_description_with_continuation_lines() -> None:
    assert parse_r_description(r_description("jsonlite", "1.8.8").encode()) == [
        Package("r", "jsonlite", "1.8.8")
    ]


def test_long_values_are_cut_to_the_column_width() -> None:
    found = parse_apk_installed(f"P:{'x' * 400}\nV:1\n".encode())
    assert len(found[0].name) == 255


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("var/lib/dpkg/status", Kind.DPKG_STATUS),
        ("var/lib/dpkg/status-old", None),
        ("var/lib/dpkg/status.d/base", Kind.DPKG_STATUS_D),
        ("var/lib/dpkg/status.d/base.md5sums", None),
        ("lib/apk/db/installed", Kind.APK_INSTALLED),
        ("var/lib/rpm/rpmdb.sqlite", Kind.RPM_SQLITE),
        ("usr/lib/sysimage/rpm/rpmdb.sqlite", Kind.RPM_SQLITE),
        ("var/lib/rpm/Packages", Kind.RPM_BDB),
        ("usr/lib/sysimage/rpm/Packages.db", Kind.RPM_NDB),
        ("opt/conda/conda-meta/numpy-1.26.4-py311_0.json", Kind.CONDA_META),
        ("usr/local/conda-meta/python-3.11.json", Kind.CONDA_META),
        ("opt/conda/conda-meta/history", None),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", Kind.PYTHON_METADATA),
        ("opt/conda/lib/python3.11/site-packages/foo-1.0.egg-info/PKG-INFO", Kind.PYTHON_METADATA),
        ("usr/lib/python3/dist-packages/old-1.0.egg-info", Kind.PYTHON_METADATA),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD", None),
        ("usr/local/lib/R/site-library/jsonlite/DESCRIPTION", Kind.R_DESCRIPTION),
        ("usr/lib/R/library/base/DESCRIPTION", Kind.R_DESCRIPTION),
        ("home/me/project/DESCRIPTION", None),
        ("usr/lib/R/library/base/html/DESCRIPTION", None),
    ],
)
def test_which_files_are_read(path: str, kind: Kind | None) -> None:
    assert kind_of(path) == kind


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_rpmdb(
        tmp_path_factory.mktemp("rpm"),
        [("dockyard-tiny", 2, "1.2.3", "4.fc40"), ("zlib-ng", 0, "2.1.6", "1")],
    )


def test_rpmdb_sqlite_made_by_rpm(rpmdb: bytes) -> None:
    assert sorted(parse_rpmdb_sqlite(rpmdb)) == [
        Package("rpm", "dockyard-tiny", "2:1.2.3-4.fc40"),
        Package("rpm", "zlib-ng", "2.1.6-1"),  # epoch 0 is not written
    ]


def test_rpm_header_blob(rpmdb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "rpmdb.sqlite"
    path.write_bytes(rpmdb)
    with sqlite3.connect(path) as conn:
        blobs = [row[0] for row in conn.execute("SELECT blob FROM Packages ORDER BY hnum")]
    assert sorted(p for p in map(parse_header, blobs) if p) == [
        Package("rpm", "dockyard-tiny", "2:1.2.3-4.fc40"),
        Package("rpm", "zlib-ng", "2.1.6-1"),
    ]
    with pytest.raises(RpmFormatError):
        parse_header(blobs[0][:40])
    with pytest.raises(RpmFormatError):
        parse_rpmdb_sqlite(b"SQLite format 3\0" + b"\0" * 100)


def _database(tmp_path: Path, *statements: str) -> bytes:
    path = tmp_path / "hostile.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    return path.read_bytes()


def test_an_rpm_database_whose_packages_are_a_view_is_refused_without_running_it(tmp_path: Path) -> None:
    """An image's rpmdb.sqlite is anyone's file: a view that would recurse for ever is never
    read (only a plain table is)."""
    data = _database(
        tmp_path,
        "CREATE VIEW Packages AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT zeroblob(1000) AS blob FROM n",
    )
    with pytest.raises(RpmFormatError, match="no Packages table"):
        parse_rpmdb_sqlite(data)


def test_an_rpm_database_with_too_many_rows_is_refused(tmp_path: Path) -> None:
    data = _database(
        tmp_path,
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) "
        "INSERT INTO Packages (blob) SELECT x'00' FROM n",
    )
    with pytest.raises(RpmFormatError, match="more than 100000 packages"):
        parse_rpmdb_sqlite(data)


def test_nul_is_dropped_from_names_and_versions() -> None:
    assert parse_apk_installed(b"P:a\x00b\nV:1\x00.2\n\n") == [Package("apk", "ab", "1.2")]
