"""Search (``GET /api/v1/search``): images found by full text, packages, labels and facets,
filtered by who may see them, ranked, counted and paged in the database.

One query shape on both databases (:func:`search`); only the full-text match differs:

- PostgreSQL: ``search_documents.tsv @@ to_tsquery('simple', 'w1:* & w2:*')`` (GIN), ranked
  by ``ts_rank`` (title > body > history > Dockerfile); when the words find nothing, names
  similar to them (pg_trgm's ``<%``: typos) are asked instead (that reads every name);
- SQLite: the FTS5 table ``search_fts`` (``"w1"* AND "w2"*``), ranked by ``bm25`` with the
  same weights.

Version terms (packages, labels, source, type, platform) must all hold for one version of the
image. A package's version is compared in Python (:func:`.search_query.version_matches`) over
the distinct version strings stored under its name (few, read by the name index), which then
filter in SQL: no sort key to keep in step with the indexer, and the rules stay one function.
The same row conditions name, in one query for the page, the packages each result matched
(:class:`MatchedPackage`: why it is there); the API adds the image's trust marks.
The permission condition (:func:`.visibility.image_visible`) is in every statement, so what a
caller may not see is in no page, facet or count. As the catalog's lists, a search counts
its matches up to 1,000 (:data:`.queries.COUNT_CAP`; beyond, ``total_exact`` is false and
the facets count the first 1,000), so no request reads every match of a large catalog.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
)

from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories, workspaces
from dockyard.catalog.queries import COUNT_CAP, platform_condition
from dockyard.catalog.search_index import SIMPLE
from dockyard.catalog.search_query import Label, Package, Query, compare_versions, parse, version_matches
from dockyard.catalog.tables import image_versions, images, search_documents, version_labels, version_packages
from dockyard.catalog.views import PRIVATE, Marks
from dockyard.catalog.visibility import image_visible, resolve
from dockyard.db.engine import Connection, Database
from dockyard.errors import Invalid
from dockyard.upstream.tables import cache_workspaces

MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_PACKAGE_VERSIONS = 10_000  # distinct versions of one package compared per term
VERSIONS_SHOWN = 20  # matching versions listed per image
PACKAGES_SHOWN = 20  # matched packages listed per image
WEIGHTS = (10.0, 4.0, 2.0, 1.0)  # title, body, history, Dockerfile (SQLite bm25)


@dataclass(frozen=True)
class FoundVersion:
    version: str
    source: str  # internal, external or cached
    kind: str
    status: str
    platforms: list[str]


@dataclass(frozen=True)
class MatchedPackage:
    """A package a package term of the query found in a matching version: why the image matched."""

    name: str  # as the package manager names it
    version: str
    ecosystem: str  # deb, apk, rpm, conda, python, r


@dataclass(frozen=True)
class Found:
    name: str
    workspace: str
    description: str
    visibility: str
    score: float
    versions: list[FoundVersion]
    # The packages the query's package terms found in the matching versions (empty: the query
    # has none), up to PACKAGES_SHOWN, by name then version.
    packages: list[MatchedPackage] = field(default_factory=list)
    # The image's trust marks (its workspace's and any of its versions'), as the image's page.
    marks: Marks | None = None


@dataclass(frozen=True)
class Results:
    items: list[Found]
    total: int
    limit: int
    offset: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    # False: more than COUNT_CAP images match; ``total`` is the cap and the facets count the
    # first COUNT_CAP matches (no search counts every match of a large catalog).
    total_exact: bool = True


def _cached() -> ColumnElement[bool]:
    return images.c.workspace_id.in_(select(cache_workspaces.c.workspace_id))


def _source() -> Any:
    """A version's source as search names it: a version in a pull-through cache is ``cached``."""
    return case(
        (and_(image_versions.c.source == "internal", _cached()), "cached"), else_=image_versions.c.source
    )


def _glob(column: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
    if "*" not in pattern:
        return column == pattern
    escaped = pattern.replace("/", "//").replace("%", "/%").replace("_", "/_").replace("*", "%")
    return column.like(escaped, escape="/")


def _label(label: Label) -> ColumnElement[bool]:
    conditions = [version_labels.c.version_id == image_versions.c.id, _glob(version_labels.c.key, label.key)]
    if label.value is not None and label.value != "*":
        conditions.append(_glob(version_labels.c.value, label.value))
    return select(version_labels.c.id).where(*conditions).exists()


async def _package_rows(conn: Connection, package: Package) -> ColumnElement[bool]:
    """A condition on ``version_packages`` rows: the package at a version the term accepts."""
    named = version_packages.c.name_key.in_(package.keys)
    if package.operator is None or package.version is None:
        return named
    found = await conn.execute(
        select(version_packages.c.version).where(named).distinct().limit(MAX_PACKAGE_VERSIONS + 1)
    )
    stored = [row[0] for row in found]
    if len(stored) > MAX_PACKAGE_VERSIONS:
        raise Invalid(f"{package.name_key} has too many versions to compare; search pkg:{package.name_key}")
    operator, version = package.operator, package.version
    # Up to MAX_PACKAGE_VERSIONS comparisons (tens of ms cold): off the event loop.
    wanted = await asyncio.to_thread(lambda: [v for v in stored if version_matches(v, operator, version)])
    if not wanted:
        return false()
    return and_(named, version_packages.c.version.in_(wanted))


@dataclass(frozen=True)
class VersionTerms:
    """What one version of the image must be (``matches``: true when the query names nothing of
    versions), and the package rows its package terms accept (``packages``: none, no term)."""

    matches: ColumnElement[bool]
    packages: list[ColumnElement[bool]]


async def _version_terms(conn: Connection, query: Query, is_sqlite: bool) -> VersionTerms:
    found: list[ColumnElement[bool]] = []
    if query.source is not None:
        found.append(_source() == query.source)
    if query.kind is not None:
        found.append(image_versions.c.kind == query.kind)
    if query.platform is not None:
        found.append(platform_condition(query.platform, is_sqlite))
    found.extend(_label(label) for label in query.labels)
    packages = [await _package_rows(conn, package) for package in query.packages]
    for rows in packages:
        # Correlated to the version only: the page's package query has version_packages too.
        found.append(
            select(version_packages.c.id)
            .where(version_packages.c.version_id == image_versions.c.id, rows)
            .correlate(image_versions)
            .exists()
        )
    return VersionTerms(and_(*found) if found else true(), packages)


def _in_name(query: Query, is_sqlite: bool) -> Any:
    """How many of the words begin a word of the name: what ranks first (a full-text rank alone
    cannot tell a name from a description in a small catalog, where every word is rare)."""
    find = func.instr if is_sqlite else func.strpos
    title = literal(" ").concat(search_documents.c.title)
    hits = [case((find(title, f" {w}") > 0, 1.0), else_=0.0) for w in query.words]
    total: Any = hits[0]
    for hit in hits[1:]:
        total = total + hit
    return total


def _text_match(query: Query, is_sqlite: bool, similar: bool) -> tuple[Any, ColumnElement[bool], Any]:
    """(what to join to the documents, the match, the score); ``similar``: names like the
    words (pg_trgm), asked only when the words themselves found nothing (a scan of every name)."""
    doc = search_documents
    if is_sqlite:
        expression = " AND ".join(f'"{w}"*' for w in query.words)
        weights = ", ".join(str(w) for w in WEIGHTS)
        fts = (
            select(
                literal_column("rowid").label("doc_id"),
                literal_column(f"bm25(search_fts, {weights})").label("rank"),
            )
            .select_from(text("search_fts"))
            .where(text("search_fts MATCH :fts").bindparams(fts=expression))
            .subquery("fts")
        )
        return fts, doc.c.id == fts.c.doc_id, _in_name(query, is_sqlite) - fts.c.rank
    phrase = " ".join(query.words)
    if similar:
        return None, literal(phrase).op("<%")(doc.c.title), func.word_similarity(phrase, doc.c.title)
    tsquery = func.to_tsquery(SIMPLE, " & ".join(f"{w}:*" for w in query.words))
    return None, doc.c.tsv.op("@@")(tsquery), _in_name(query, is_sqlite) + func.ts_rank(doc.c.tsv, tsquery)


async def search(
    conn: Connection, subject: Subject, query: Query, limit: int, offset: int, *, now: float, is_sqlite: bool
) -> Results:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit is between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise Invalid(f"offset is between 0 and {MAX_OFFSET}")
    viewer = await resolve(conn, subject, now)
    terms = await _version_terms(conn, query, is_sqlite)
    versions_ok = terms.matches
    where: list[ColumnElement[bool]] = [image_visible(viewer)]
    if query.workspace is not None:
        where.append(workspaces.c.name == query.workspace)
    if query.on_versions:
        owned = image_versions.c.image_id == images.c.id
        where.append(select(image_versions.c.id).where(owned, versions_ok).exists())
    source, score, matched = _matching(query, where, is_sqlite, similar=False)
    found = await _count(conn, source, matched)
    if not found and query.words and not is_sqlite:  # no word found: names like them (typos)
        source, score, matched = _matching(query, where, is_sqlite, similar=True)
        found = await _count(conn, source, matched)
    total, exact = min(found, COUNT_CAP), found <= COUNT_CAP
    matches = select(images.c.id).select_from(source).where(*matched).limit(COUNT_CAP)
    facets = await _facets(conn, matches, versions_ok, is_sqlite) if total else {}
    page = (
        await conn.execute(
            select(
                images.c.id,
                images.c.name,
                images.c.description,
                workspaces.c.name.label("workspace"),
                score.label("score"),
            )
            .select_from(source)
            .where(*matched)
            .order_by(score.desc(), images.c.name)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    items = await _found(conn, page, terms)
    return Results(items, total, limit, offset, facets, exact)


def _matching(
    query: Query, where: list[ColumnElement[bool]], is_sqlite: bool, *, similar: bool
) -> tuple[Any, Any, list[ColumnElement[bool]]]:
    """(the tables joined, the score, the conditions) of the images that match."""
    source = images.join(workspaces, workspaces.c.id == images.c.workspace_id)
    if not query.words:
        return source, literal(0.0), where
    source = source.join(search_documents, search_documents.c.image_id == images.c.id)
    joined, matched, score = _text_match(query, is_sqlite, similar)
    if joined is not None:
        return source.join(joined, matched), score, where
    return source, score, [*where, matched]


async def _count(conn: Connection, source: Any, where: list[ColumnElement[bool]]) -> int:
    """How many images match, counted up to :data:`COUNT_CAP` + 1 (the database stops there)."""
    counted = select(images.c.id).select_from(source).where(*where).limit(COUNT_CAP + 1).subquery()
    found: int = (await conn.execute(select(func.count()).select_from(counted))).scalar_one()
    return found


async def _found(conn: Connection, page: Any, terms: VersionTerms) -> list[Found]:
    ids = [row.id for row in page]
    if not ids:
        return []
    versions_ok = terms.matches
    shown: dict[int, list[FoundVersion]] = {i: [] for i in ids}
    for row in await conn.execute(
        select(
            image_versions.c.image_id,
            image_versions.c.version,
            _source().label("source"),
            image_versions.c.kind,
            image_versions.c.status,
            image_versions.c.platforms,
        )
        .join(images, images.c.id == image_versions.c.image_id)
        .where(image_versions.c.image_id.in_(ids), versions_ok)
        .order_by(image_versions.c.image_id, image_versions.c.updated_at.desc(), image_versions.c.id.desc())
    ):
        listed = shown[row.image_id]
        if len(listed) < VERSIONS_SHOWN:
            platforms = _json_list(row.platforms)
            listed.append(FoundVersion(row.version, row.source, row.kind, row.status, platforms))
    packages = await _matched_packages(conn, ids, terms)
    names = [row.name for row in page]
    visibility = dict(
        (
            await conn.execute(
                select(repositories.c.name, repositories.c.visibility).where(repositories.c.name.in_(names))
            )
        ).all()
    )
    return [
        Found(
            row.name,
            row.workspace,
            row.description,
            visibility.get(row.name) or PRIVATE,
            float(row.score or 0),
            shown[row.id],
            packages.get(row.id, []),
        )
        for row in page
    ]


async def _matched_packages(
    conn: Connection, ids: list[int], terms: VersionTerms
) -> dict[int, list[MatchedPackage]]:
    """The packages the package terms found in the matching versions of the page's images, in
    one query: each image's, by name then version (newest first), up to PACKAGES_SHOWN."""
    if not terms.packages:
        return {}
    rows = await conn.execute(
        select(
            image_versions.c.image_id,
            version_packages.c.name,
            version_packages.c.version,
            version_packages.c.ecosystem,
        )
        .distinct()
        .select_from(
            version_packages.join(image_versions, image_versions.c.id == version_packages.c.version_id).join(
                images, images.c.id == image_versions.c.image_id
            )
        )
        .where(image_versions.c.image_id.in_(ids), terms.matches, or_(*terms.packages))
    )
    found: dict[int, list[MatchedPackage]] = {}
    for row in rows:
        found.setdefault(row.image_id, []).append(MatchedPackage(row.name, row.version, row.ecosystem))
    return {image: sorted(listed, key=_package_order)[:PACKAGES_SHOWN] for image, listed in found.items()}


def _newer_first(a: MatchedPackage, b: MatchedPackage) -> int:
    by_name = (a.name.lower(), a.ecosystem), (b.name.lower(), b.ecosystem)
    if by_name[0] != by_name[1]:
        return -1 if by_name[0] < by_name[1] else 1
    return compare_versions(b.version, a.version) or (a.version > b.version) - (a.version < b.version)


_package_order = functools.cmp_to_key(_newer_first)


def _json_list(raw: str) -> list[str]:
    found = json.loads(raw)
    return [str(p) for p in found] if isinstance(found, list) else []


async def _facets(
    conn: Connection, matches: Any, versions_ok: ColumnElement[bool], is_sqlite: bool
) -> dict[str, dict[str, int]]:
    """How many of the matches fall under each workspace, source, type and platform (a version
    that matches the version terms has it), counted in the database."""
    matched = matches.subquery("matched")
    facets: dict[str, dict[str, int]] = {}
    by_workspace = (
        select(workspaces.c.name, func.count())
        .select_from(
            matched.join(images, images.c.id == matched.c.id).join(
                workspaces, workspaces.c.id == images.c.workspace_id
            )
        )
        .group_by(workspaces.c.name)
    )
    facets["workspace"] = {name: count for name, count in await conn.execute(by_workspace)}
    versions = matched.join(images, images.c.id == matched.c.id).join(
        image_versions, image_versions.c.image_id == images.c.id
    )
    for facet, column in (("source", _source()), ("type", image_versions.c.kind)):
        stmt = (
            select(column.label("value"), func.count(func.distinct(images.c.id)))
            .select_from(versions)
            .where(versions_ok)
            .group_by(column)
        )
        facets[facet] = {value: count for value, count in await conn.execute(stmt)}
    facets["platform"] = await _platform_facet(conn, versions, versions_ok, is_sqlite)
    return facets


async def _platform_facet(
    conn: Connection, versions: Any, versions_ok: ColumnElement[bool], is_sqlite: bool
) -> dict[str, int]:
    if is_sqlite:
        elements = func.json_each(image_versions.c.platforms).table_valued("value")
    else:
        elements = func.json_array_elements_text(cast(image_versions.c.platforms, JSON)).table_valued("value")
    value = elements.c.value
    stmt = (
        select(value.label("platform"), func.count(func.distinct(images.c.id)))
        .select_from(versions)
        .join(elements, true())
        .where(versions_ok)
        .group_by(value)
    )
    return {platform: count for platform, count in await conn.execute(stmt)}


class Search:
    """The search service: :func:`search` in a read transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, actor: Subject, q: str, limit: int = 20, offset: int = 0) -> Results:
        query = parse(q)
        async with self.db.read() as conn:
            return await search(
                conn, actor, query, limit, offset, now=time.time(), is_sqlite=self.db.is_sqlite
            )
