"""The packages a root filesystem declares, read from the files its package managers keep.

Pure: every parser takes the bytes of one file (already read, bounded by the caller) and returns
:class:`Package` values; :func:`kind_of` says which files are worth reading at all. Formats read:

- ``deb``: dpkg's ``var/lib/dpkg/status`` (stanzas whose ``Status`` ends in ``installed``) and
  distroless ``var/lib/dpkg/status.d/*`` (one stanza per file, no ``Status`` field);
- ``apk``: Alpine's ``lib/apk/db/installed`` (``P:`` name, ``V:`` version lines);
- ``rpm``: in ``var/lib/rpm/`` (and ``usr/lib/sysimage/rpm/``), the SQLite rpm database
  ``rpmdb.sqlite`` (rpm 4.16 and later, :mod:`.rpmdb`) and the BerkeleyDB hash database
  ``Packages`` (older rpm: CentOS 7, RHEL 8, Amazon Linux 2, :mod:`.rpm_bdb`), each header blob
  parsed for NAME, EPOCH, VERSION, RELEASE; the NDB ``Packages.db`` (openSUSE) is recognised,
  not read (the scan says so);
- ``conda``: ``<prefix>/conda-meta/*.json`` at any prefix (``name``, ``version``);
- ``python``: ``*.dist-info/METADATA`` and ``*.egg-info/PKG-INFO`` (or an ``.egg-info`` file),
  the ``Name`` and ``Version`` headers;
- ``r``: ``.../library/<pkg>/DESCRIPTION`` and ``.../site-library/<pkg>/DESCRIPTION``
  (``Package``, ``Version``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

MAX_FIELD = 255  # the columns' width: longer names and versions are cut


class Ecosystem(StrEnum):
    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    CONDA = "conda"
    PYTHON = "python"
    R = "r"


class Kind(StrEnum):
    """What an interesting file is, which says how to parse it."""

    DPKG_STATUS = "dpkg-status"
    DPKG_STATUS_D = "dpkg-status.d"
    APK_INSTALLED = "apk-installed"
    RPM_SQLITE = "rpm-sqlite"
    RPM_BDB = "rpm-bdb"
    RPM_NDB = "rpm-ndb"
    CONDA_META = "conda-meta"
    PYTHON_METADATA = "python-metadata"
    R_DESCRIPTION = "r-description"


# Databases that may be large (the whole package set in one file); the rest are one package each.
DATABASES = frozenset({Kind.DPKG_STATUS, Kind.APK_INSTALLED, Kind.RPM_SQLITE, Kind.RPM_BDB, Kind.RPM_NDB})
# Recognised but not parsed: their presence makes a scan partial.
UNREAD = frozenset({Kind.RPM_NDB})

_RPM_DIRS = ("var/lib/rpm/", "usr/lib/sysimage/rpm/")
_RPM_FILES = {"rpmdb.sqlite": Kind.RPM_SQLITE, "Packages": Kind.RPM_BDB, "Packages.db": Kind.RPM_NDB}
_PYTHON = re.compile(r"(?:^|/)[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO|egg-info)$")
_R = re.compile(r"(?:^|/)(?:site-)?library/[A-Za-z][A-Za-z0-9.]*/DESCRIPTION$")
_CONDA = re.compile(r"(?:^|/)conda-meta/[^/]+\.json$")
_PEP503 = re.compile(r"[-_.]+")


@dataclass(frozen=True, order=True)
class Package:
    ecosystem: str
    name: str
    version: str

    @property
    def name_key(self) -> str:
        return name_key(self.ecosystem, self.name)


def name_key(ecosystem: str, name: str) -> str:
    """What names are matched on: lowercase; Python names normalised as PEP 503 says."""
    lowered = name.lower()
    if ecosystem == Ecosystem.PYTHON:
        return _PEP503.sub("-", lowered)
    return lowered


def kind_of(path: str) -> Kind | None:
    """The kind of a (normalised, relative) path in a root filesystem, or None if no parser reads it."""
    if path == "var/lib/dpkg/status":
        return Kind.DPKG_STATUS
    if path.startswith("var/lib/dpkg/status.d/") and "/" not in path[23:] and len(path) > 23:
        name = path[23:]
        return None if name.endswith(".md5sums") else Kind.DPKG_STATUS_D
    if path == "lib/apk/db/installed":
        return Kind.APK_INSTALLED
    for folder in _RPM_DIRS:
        if path.startswith(folder) and path[len(folder) :] in _RPM_FILES:
            return _RPM_FILES[path[len(folder) :]]
    if path.endswith(".json") and _CONDA.search(path):
        return Kind.CONDA_META
    if (path.endswith(("METADATA", "PKG-INFO", ".egg-info"))) and _PYTHON.search(path):
        return Kind.PYTHON_METADATA
    if path.endswith("/DESCRIPTION") and _R.search(path):
        return Kind.R_DESCRIPTION
    return None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _cut(value: str) -> str:
    """Trimmed, bounded, and without NUL (a database's text cannot hold it)."""
    return value.replace("\x00", "").strip()[:MAX_FIELD]


def _package(ecosystem: Ecosystem, name: str, version: str) -> Package | None:
    name, version = _cut(name), _cut(version)
    return Package(ecosystem.value, name, version) if name else None


def rfc822_stanzas(text: str) -> list[dict[str, str]]:
    """Blank-line separated ``Field: value`` stanzas (continuation lines start with a space)."""
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, last = {}, ""
        elif line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            fields.setdefault(last, value.strip())
    if fields:
        stanzas.append(fields)
    return stanzas


def parse_dpkg_status(data: bytes, *, require_status: bool = True) -> list[Package]:
    """dpkg's status file: installed packages (``Status: install ok installed``, or any state
    ending in ``installed``; half-installed and config-files are not). Distroless
    ``status.d`` files have no ``Status`` (``require_status=False``)."""
    found = []
    for stanza in rfc822_stanzas(_text(data)):
        status = stanza.get("status")
        if status is None and require_status:
            continue
        if status is not None and status.split()[-1:] != ["installed"]:
            continue
        package = _package(Ecosystem.DEB, stanza.get("package", ""), stanza.get("version", ""))
        if package is not None:
            found.append(package)
    return found


def parse_apk_installed(data: bytes) -> list[Package]:
    """Alpine's installed database: stanzas of one-letter fields; ``P:`` name, ``V:`` version."""
    found = []
    name = version = ""
    for line in [*_text(data).splitlines(), ""]:
        if not line.strip():
            package = _package(Ecosystem.APK, name, version) if name else None
            if package is not None:
                found.append(package)
            name = version = ""
        elif line.startswith("P:"):
            name = line[2:]
        elif line.startswith("V:"):
            version = line[2:]
    return found


def parse_conda_meta(data: bytes) -> list[Package]:
    """One ``conda-meta/<name>-<version>-<build>.json`` record."""
    try:
        record = json.loads(data)
    except ValueError:
        return []
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
        return []
    version = record.get("version")
    package = _package(Ecosystem.CONDA, record["name"], version if isinstance(version, str) else "")
    return [package] if package is not None else []


def _headers(text: str) -> dict[str, str]:
    """The first stanza of an email-style document (a Python METADATA file's headers)."""
    head = text.split("\n\n", 1)[0].replace("\r\n", "\n")
    stanzas = rfc822_stanzas(head)
    return stanzas[0] if stanzas else {}


def parse_python_metadata(data: bytes) -> list[Package]:
    """Core metadata (``METADATA``, ``PKG-INFO``): the ``Name`` and ``Version`` headers."""
    fields = _headers(_text(data))
    package = _package(Ecosystem.PYTHON, fields.get("name", ""), fields.get("version", ""))
    return [package] if package is not None else []


def parse_r_description(data: bytes) -> list[Package]:
    """An installed R package's ``DESCRIPTION`` (Debian control format): ``Package``, ``Version``."""
    stanzas = rfc822_stanzas(_text(data))
    if not stanzas:
        return []
    fields = stanzas[0]
    package = _package(Ecosystem.R, fields.get("package", ""), fields.get("version", ""))
    return [package] if package is not None else []


TEXT_PARSERS = {
    Kind.DPKG_STATUS: parse_dpkg_status,
    Kind.DPKG_STATUS_D: lambda data: parse_dpkg_status(data, require_status=False),
    Kind.APK_INSTALLED: parse_apk_installed,
    Kind.CONDA_META: parse_conda_meta,
    Kind.PYTHON_METADATA: parse_python_metadata,
    Kind.R_DESCRIPTION: parse_r_description,
}
