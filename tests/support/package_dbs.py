"""Package databases as their package managers write them, for the package index tests.

Text formats are written out here as they appear in real images (trimmed stanzas of Debian 12,
Alpine 3.19, conda-forge, PyPI and CRAN installs); the rpm database is made by Debian's real
``rpm`` tools (``rpmbuild`` of a tiny noarch package, ``rpm --justdb`` into an SQLite rpmdb), and
its headers loaded by Berkeley DB's own ``db5.3_load`` into the ``Packages`` hash database rpm
before 4.16 kept.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

DPKG_STATUS = """\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u5
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Pre-Depends: awk
Conffiles:
 /etc/debian_version 0d5bd12c3ba3d6ec2de75f3fbbd4d0b8
 /etc/dpkg/origins/debian c47b6815f67ad1aeccb0d4529bd0b990
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files, such as /etc/debian_version,
 .
 /etc/host.conf, /etc/issue, /etc/motd, /etc/profile, and others.
Homepage: https://tracker.debian.org/pkg/base-files

Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6212
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL and
 TLS cryptographic protocols for secure communication over the Internet.
Homepage: https://www.openssl.org/

Package: vim-tiny
Status: deinstall ok config-files
Priority: important
Section: editors
Installed-Size: 1718
Maintainer: Debian Vim Maintainers <team+vim@tracker.debian.org>
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
Conffiles:
 /etc/vim/vimrc.tiny 2c5f9f5a0c4b3f0c7a1c6f8c1e2f8c5b
Description: Vi IMproved - enhanced vi editor - compact version
"""

DISTROLESS_STATUS_D = {
    "base": "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n",
    "tzdata": "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
}

APK_INSTALLED = """\
C:Q1OPC1aMsm1f6Fx0jmsfCBPJdTbTE=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Ter\u00e4s <timo.teras@iki.fi>
t:1700661234
c:79a6e6eeaa8c1ef8b3ebb0deb0ca1b4b8b6c7f56
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1m2pWEv0jI3rKkZZyN8cRKV7wvm8=
R:libc.musl-x86_64.so.1

C:Q1yB3CcgMgDXnVDjD3rEALsbHEsL4=
P:busybox
V:1.36.1-r15
A:x86_64
S:509318
I:959488
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:S\u00f6ren Tempel <soeren+alpine@soeren-tempel.net>
t:1701263544
c:42b0a2e8bc82e14fc2d7a7a8ea0e3a8d1b0d4d0e
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r15 cmd:sh=1.36.1-r15
F:bin
R:busybox
a:0:0:755
Z:Q1Bgy1p4wV4Ls0cIfU0Q9XH0K0xxY=

"""


def conda_record(name: str, version: str, build: str = "h1234567_0") -> str:
    """A ``conda-meta/<name>-<version>-<build>.json`` record as conda writes it (trimmed)."""
    return json.dumps(
        {
            "build": build,
            "build_number": 0,
            "channel": "https://conda.anaconda.org/conda-forge/linux-64",
            "depends": ["libgcc-ng >=12"],
            "files": [f"lib/lib{name}.so"],
            "fn": f"{name}-{version}-{build}.conda",
            "license": "BSD-3-Clause",
            "name": name,
            "subdir": "linux-64",
            "version": version,
            "requested_spec": name,
        },
        indent=2,
    )


def python_metadata(name: str, version: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        "Summary: A package\n"
        "Requires-Python: >=3.8\n"
        "Description-Content-Type: text/markdown\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "\n"
        f"# {name}\n\nName: not-a-header\nVersion: 0\n"
    )


def r_description(name: str, version: str) -> str:
    return (
        f"Package: {name}\n"
        "Type: Package\n"
        f"Title: The {name} Package\n"
        f"Version: {version}\n"
        "Authors@R: c(\n"
        '    person("Jeroen", "Ooms", role = c("aut", "cre"),\n'
        '      email = "jeroen@berkeley.edu"))\n'
        "Depends: methods\n"
        "License: MIT + file LICENSE\n"
        "NeedsCompilation: yes\n"
        "Built: R 4.3.2; x86_64-pc-linux-gnu; 2024-01-10 12:00:00 UTC; unix\n"
    )


_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Epoch: {epoch}
Summary: a test package of the Dockyard package index
License: MIT
BuildArch: noarch
%description
A package with no files, for an rpm database.
%files
"""


def make_rpmdb(work: Path, packages: list[tuple[str, int, str, str]]) -> bytes:
    """The bytes of an ``rpmdb.sqlite`` holding ``(name, epoch, version, release)`` packages,
    made by ``rpmbuild`` and ``rpm --justdb`` (Debian's rpm package)."""
    for tool in ("rpm", "rpmbuild"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: apt-get install rpm (scripts/setup.sh installs it)")
    top, db = work / "rpmbuild", work / "rpmdb"
    db.mkdir(parents=True)
    for name, epoch, version, release in packages:
        spec = work / f"{name}.spec"
        spec.write_text(_SPEC.format(name=name, version=version, release=release, epoch=epoch))
        subprocess.run(
            ["rpmbuild", "--quiet", "--define", f"_topdir {top}", "-bb", str(spec)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    built = sorted(str(p) for p in (top / "RPMS" / "noarch").glob("*.rpm"))
    subprocess.run(
        ["rpm", "--dbpath", str(db), "--define", "_db_backend sqlite", "-i", "--nodeps", "--justdb",
         "--ignorearch", *built],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return (db / "rpmdb.sqlite").read_bytes()


def rpm_headers(work: Path, rpmdb_sqlite: bytes) -> list[bytes]:
    """The header blobs of an ``rpmdb.sqlite``'s ``Packages`` table, in instance order."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "headers.sqlite"
    path.write_bytes(rpmdb_sqlite)
    conn = sqlite3.connect(path)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT blob FROM Packages ORDER BY hnum")]
    finally:
        conn.close()


def make_rpmdb_bdb(
    work: Path, headers: list[bytes], *, pagesize: int = 4096, big_endian: bool = False
) -> Path:
    """A folder holding a Berkeley DB hash ``Packages`` as rpm before 4.16 kept it, written by
    ``db5.3_load`` (Debian's db5.3-util): key ``n`` (a uint32 in the file's byte order) holds
    the ``n``-th of ``headers``, key 0 the next instance number. A header over a quarter of
    ``pagesize`` is stored in a chain of overflow pages by libdb, a smaller one inline."""
    if shutil.which("db5.3_load") is None:
        raise RuntimeError("db5.3_load is missing: apt-get install db5.3-util (scripts/setup.sh installs it)")
    order = ">I" if big_endian else "<I"
    pairs = [(struct.pack(order, 0), struct.pack(order, len(headers) + 1))]
    pairs += [(struct.pack(order, n), header) for n, header in enumerate(headers, 1)]
    dump = ["VERSION=3", "format=bytevalue", "type=hash", "HEADER=END"]
    dump += [f" {item.hex()}" for pair in pairs for item in pair]
    dump.append("DATA=END")
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"bdb-{pagesize}-{'be' if big_endian else 'le'}-", dir=work))
    subprocess.run(
        ["db5.3_load", "-t", "hash", "-c", f"db_pagesize={pagesize}",
         "-c", f"db_lorder={4321 if big_endian else 1234}", str(folder / "Packages")],
        input="\n".join(dump) + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return folder


def rpm_query_bdb(folder: Path) -> list[str]:
    """What Debian's ``rpm`` lists (``NAME EPOCH VERSION-RELEASE``) of the Berkeley DB
    ``Packages`` in ``folder``, read with its read-only bdb backend."""
    listed = subprocess.run(
        ["rpm", "--dbpath", str(folder), "--define", "_db_backend bdb_ro", "-qa",
         "--qf", "%{NAME} %{EPOCH} %{VERSION}-%{RELEASE}\\n"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    return sorted(listed.stdout.splitlines())


def layer(
    files: Mapping[str, bytes | str],
    *,
    symlinks: Mapping[str, str] | None = None,
    devices: Mapping[str, bytes] | None = None,
) -> bytes:
    """A gzip layer tar of ``files`` (names like ``var/lib/dpkg/status``; a name ending in ``/``
    is a directory; ``.wh.`` names are whiteouts), with ``symlinks`` (name -> target as written)
    and ``devices`` (name -> tar type: ``tarfile.CHRTYPE``, ``tarfile.FIFOTYPE``...)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 0
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            data = content.encode() if isinstance(content, str) else content
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
        for name, kind in (devices or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)
