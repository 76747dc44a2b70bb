"""The search language (``GET /api/v1/search?q=``), parsed into a :class:`Query`; pure.

Terms are separated by spaces:

- ``samtools`` ``"variant caller"``: words searched in the full text (names, descriptions,
  labels, annotations, the config history, the Dockerfile);
- ``samtools>=1.19``, ``python=3.11`` (also ``==``, ``<=``, ``>``, ``<``, ``!=``), ``pkg:samtools``:
  a package installed in a version, with its version compared by :func:`compare_versions`;
- ``label:key=value`` (``*`` in the value or the key is a glob; ``label:key`` any value);
- ``workspace:NAME``, ``source:internal|external|cached``, ``type:tool|bench``,
  ``platform:os/arch[/variant]``: facets.

Bad input is :class:`~dockyard.errors.Invalid` with a message that names the term.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass, field

from dockyard.errors import Invalid

MAX_QUERY = 500
MAX_TERMS = 20
SOURCES = ("internal", "external", "cached")
TYPES = ("tool", "bench")
FACETS = ("workspace", "source", "type", "platform")
OPERATORS = ("==", ">=", "<=", "!=", "=", ">", "<")
_PACKAGE = re.compile(
    r"([A-Za-z0-9][A-Za-z0-9._+-]{0,254})(==|>=|<=|!=|=|>|<)([A-Za-z0-9][A-Za-z0-9._+~:^-]{0,127})"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9*][A-Za-z0-9._/*-]{0,254}")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Package:
    ecosystem: str | None  # None: any
    name_key: str
    operator: str | None  # None: any version
    version: str | None

    @property
    def keys(self) -> tuple[str, ...]:
        """The ``version_packages.name_key`` values that name this package in any ecosystem:
        the lower-case name (deb, apk, rpm, conda, R keep ``.``, ``_`` and ``-`` as they are)
        and, where it differs, its PEP 503 form (Python's)."""
        python = re.sub(r"[-_.]+", "-", self.name_key)
        return (self.name_key,) if python == self.name_key else (self.name_key, python)


@dataclass(frozen=True)
class Label:
    key: str  # may hold * (a glob)
    value: str | None  # None: any value; may hold *


@dataclass
class Query:
    words: list[str] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    workspace: str | None = None
    source: str | None = None
    kind: str | None = None
    platform: str | None = None

    @property
    def on_versions(self) -> bool:
        """Whether a version must match (the terms all hold for one version)."""
        return bool(self.packages or self.labels or self.source or self.kind or self.platform)


def name_key(name: str) -> str:
    """A package name as asked: lower case (:attr:`Package.keys` adds Python's PEP 503 form)."""
    return name.lower()


def parse(text: str) -> Query:
    if len(text) > MAX_QUERY:
        raise Invalid(f"the query is longer than {MAX_QUERY} characters")
    if "\x00" in text:
        raise Invalid("the query holds a NUL character")
    try:
        terms = shlex.split(text)
    except ValueError as exc:
        raise Invalid(f"the query cannot be read: {exc}") from None
    if len(terms) > MAX_TERMS:
        raise Invalid(f"the query has more than {MAX_TERMS} terms")
    query = Query()
    for term in terms:
        _add(query, term)
    if not (query.words or query.on_versions or query.workspace):
        raise Invalid("the query is empty: give words, packages (samtools>=1.19), labels or filters")
    return query


def _facet(query: Query, key: str, value: str) -> None:
    if getattr(query, key) is not None:
        raise Invalid(f"{key}: is given twice")
    setattr(query, key, value)


def _add(query: Query, term: str) -> None:
    prefix, colon, rest = term.partition(":")
    if colon and prefix == "label":
        key, equals, value = rest.partition("=")
        if not _LABEL_KEY.fullmatch(key) or len(value) > 500:
            raise Invalid(f"{term!r}: a label term is label:key=value (* is a glob) or label:key")
        query.labels.append(Label(key, value if equals else None))
    elif colon and prefix == "pkg":
        found = _PACKAGE.fullmatch(rest)
        if found:
            query.packages.append(Package(None, name_key(found[1]), found[2], found[3]))
        elif _NAME.fullmatch(rest):
            query.packages.append(Package(None, name_key(rest), None, None))
        else:
            raise Invalid(f"{term!r}: a package term is pkg:NAME or NAME>=VERSION")
    elif colon and prefix == "workspace":
        if not _NAME.fullmatch(rest):
            raise Invalid(f"{term!r}: workspace:NAME")
        _facet(query, "workspace", rest)
    elif colon and prefix == "source":
        if rest not in SOURCES:
            raise Invalid(f"{term!r}: source is one of {', '.join(SOURCES)}")
        _facet(query, "source", rest)
    elif colon and prefix == "type":
        if rest not in TYPES:
            raise Invalid(f"{term!r}: type is one of {', '.join(TYPES)}")
        _facet(query, "kind", rest)
    elif colon and prefix == "platform":
        if not _PLATFORM.fullmatch(rest):
            raise Invalid(f"{term!r}: platform is os/arch or os/arch/variant, e.g. platform:linux/amd64")
        _facet(query, "platform", rest)
    elif colon and re.fullmatch(r"[a-z]+", prefix):
        raise Invalid(
            f"{term!r}: unknown filter {prefix}:; known: label, pkg, workspace, source, type, platform"
        )
    elif found := _PACKAGE.fullmatch(term):
        query.packages.append(Package(None, name_key(found[1]), found[2], found[3]))
    else:
        words = [w.lower() for w in _WORD.findall(term)]
        if not words:
            raise Invalid(f"{term!r} has no word to search for")
        query.words.extend(words)


# --- versions -------------------------------------------------------------------------

_PIECE = re.compile(r"\d+|[A-Za-z]+|~")


@functools.lru_cache(maxsize=1 << 16)  # a search compares every stored version of a package
def _key(version: str) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    """A loose sort key of Debian, rpm and PEP 440 versions: the epoch (``2:``), then numbers
    compared as numbers and letters as text, ``~`` (and pre-release words: a, b, rc, alpha,
    beta, dev, pre) before anything, a number after text; the Debian revision is compared last."""
    epoch, colon, rest = version.partition(":")
    if not (colon and epoch.isdigit()):
        epoch, rest = "0", version
    pieces: list[tuple[int, int | str]] = []
    for piece in _PIECE.findall(rest.lower()):
        if piece == "~" or piece in ("a", "b", "c", "rc", "alpha", "beta", "dev", "pre", "preview"):
            pieces.append((0, piece))
        elif piece.isdigit():
            pieces.append((3, int(piece)))
        else:
            pieces.append((2, piece))
    return int(epoch), tuple(pieces)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` (:func:`_key`). A missing piece is
    0 against a number (``1.19 == 1.19.0``), after a pre-release (``1.0~rc1 < 1.0``) and before
    anything else (``1.0 < 1.0.post1``)."""
    ka, kb = _key(a), _key(b)
    if ka[0] != kb[0]:
        return -1 if ka[0] < kb[0] else 1
    for i in range(max(len(ka[1]), len(kb[1]))):
        x = ka[1][i] if i < len(ka[1]) else None
        y = kb[1][i] if i < len(kb[1]) else None
        if x == y:
            continue
        if x is None or y is None:
            other = y if x is None else x
            assert other is not None
            if other == (3, 0):
                continue
            later = other[0] == 0  # the missing side is later than a pre-release
            return (1 if later else -1) * (1 if x is None else -1)
        if x[0] != y[0]:
            return -1 if x[0] < y[0] else 1
        # Same kind (x[0] == y[0]): both numbers or both strings; mypy cannot see it in the union.
        return -1 if x[1] < y[1] else 1  # type: ignore[operator]
    return 0


def _text(pieces: tuple[tuple[int, int | str], ...]) -> str:
    return ".".join(str(p) for _, p in pieces)


def version_matches(found: str, operator: str, wanted: str) -> bool:
    """``found OP wanted``; ``=`` is a prefix match on whole pieces (``python=3.11`` holds for
    3.11.7), ``==`` is exact (as compared)."""
    if operator == "=":
        fk, wk = _key(found), _key(wanted)
        return fk[0] == wk[0] and compare_versions(_text(fk[1][: len(wk[1])]), _text(wk[1])) == 0
    c = compare_versions(found, wanted)
    return {"==": c == 0, "!=": c != 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0}[operator]
