"""Keeping the search documents (``search_documents``, ``version_labels``) up to date.

One document per name (an image's, or a build definition's before its first image): the
name's words, the description with every version's labels and annotations, the config history
(``created_by`` of the latest inspected version) and the build definition's Dockerfile, each
folded by :func:`words`. :func:`refresh` rewrites an image's document in the transaction of a
catalog change (every change records an event: :func:`.history.record_event` calls it); the
inspection stores a version's labels, annotations and history (:func:`store_version_text`);
build definitions hand their Dockerfile over (:func:`set_dockerfile`). PostgreSQL recomputes
``tsv`` in the same statement; SQLite's FTS5 mirror follows by triggers (migration 0030).
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import delete, func, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dockyard.catalog.tables import image_versions, images, search_documents, version_labels
from dockyard.db.engine import Connection

# SQLite's FTS5 index of the documents and its shadow tables: made by migration 0030, outside
# the metadata (SQLAlchemy has no virtual tables), kept in step by triggers.
FTS_TABLES = frozenset(f"search_fts{suffix}" for suffix in ("", "_data", "_idx", "_docsize", "_config"))
MAX_FIELD = 64 * 1024  # characters kept of a document's field
MAX_LABELS = 200  # labels and annotations kept per version
SIMPLE: Any = literal_column("'simple'::regconfig")  # no stemming, no stop words: names and versions
_NOT_WORD = re.compile(r"[\W]+")


def words(text: str) -> str:
    """``text`` as the index sees it: lower case, anything not a letter, digit or ``_`` a space."""
    return _NOT_WORD.sub(" ", text[:MAX_FIELD]).strip().lower()


def _tsv() -> Any:
    """``tsv`` recomputed from the row's columns (PostgreSQL), weighted title > body > history >
    Dockerfile."""
    c = search_documents.c

    def part(column: Any, weight: str) -> Any:
        return func.setweight(func.to_tsvector(SIMPLE, column), literal_column(f"'{weight}'"))

    return (
        part(c.title, "A")
        .op("||")(part(c.body, "B"))
        .op("||")(part(c.history, "C"))
        .op("||")(part(c.dockerfile, "D"))
    )


async def _upsert(conn: Connection, name: str, values: dict[str, Any]) -> bool:
    """Update the document of ``name`` with ``values`` (creating it); whether the database is
    PostgreSQL (read from the answer, so callers need not know)."""
    values = {**values, "updated_at": time.time()}
    change = update(search_documents).where(search_documents.c.name == name).values(values)
    result = await conn.execute(change)
    is_pg = result.context.dialect.name == "postgresql"
    if not result.rowcount:
        # A transaction that made the document meanwhile wins the insert; this one updates it.
        dialect_insert = postgresql.insert if is_pg else sqlite.insert
        stmt = dialect_insert(search_documents).values(name=name, **values)
        added = await conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        if not added.rowcount:
            await conn.execute(change)
    if is_pg:
        await conn.execute(update(search_documents).where(search_documents.c.name == name).values(tsv=_tsv()))
    return is_pg


async def refresh(conn: Connection, image_id: int) -> None:
    """Rewrite the document of the image ``image_id`` (gone: nothing to do)."""
    row = (
        await conn.execute(select(images.c.name, images.c.description).where(images.c.id == image_id))
    ).first()
    if row is None:
        return
    labels = await conn.execute(
        select(version_labels.c.key, version_labels.c.value)
        .join(image_versions, image_versions.c.id == version_labels.c.version_id)
        .where(image_versions.c.image_id == image_id)
        .distinct()
        .limit(MAX_LABELS * 4)
    )
    body = " ".join([row.description, *(f"{k} {v}" for k, v in labels)])
    await _upsert(conn, row.name, {"image_id": image_id, "title": words(row.name), "body": words(body)})


async def set_dockerfile(conn: Connection, name: str, dockerfile: str | None) -> None:
    """The Dockerfile of the build definition ``name`` (``None``: none, e.g. a git context)."""
    await _upsert(conn, name, {"dockerfile": words(dockerfile or "")})


async def forget_dockerfile(conn: Connection, name: str) -> None:
    """The build definition ``name`` is gone (or renamed): its Dockerfile is no longer searched."""
    await conn.execute(
        delete(search_documents).where(search_documents.c.name == name, search_documents.c.image_id.is_(None))
    )
    if await _exists(conn, name):
        await _upsert(conn, name, {"dockerfile": ""})


async def _exists(conn: Connection, name: str) -> bool:
    found = await conn.execute(select(search_documents.c.id).where(search_documents.c.name == name))
    return found.first() is not None


def _strings(found: Any) -> dict[str, str]:
    if not isinstance(found, dict):
        return {}
    # A label may hold NUL, which a database's text cannot: dropped, as nothing searches for it.
    return {
        str(k).replace("\x00", "")[:255]: str(v).replace("\x00", "")[:4096]
        for k, v in list(found.items())[:MAX_LABELS]
    }


async def store_version_text(
    conn: Connection,
    version_id: int,
    image_id: int,
    labels: dict[str, str],
    annotations: dict[str, str],
    history: list[str],
) -> None:
    """What the inspection read of a version: its config's labels, its manifest's annotations
    (replacing those stored) and its config history's ``created_by`` lines (the image's
    document keeps the latest inspected version's)."""
    await conn.execute(delete(version_labels).where(version_labels.c.version_id == version_id))
    rows = [
        {"version_id": version_id, "origin": origin, "key": key, "value": value}
        for origin, found in (("label", labels), ("annotation", annotations))
        for key, value in _strings(found).items()
    ]
    if rows:
        await conn.execute(insert(version_labels), rows)
    name = (await conn.execute(select(images.c.name).where(images.c.id == image_id))).scalar_one_or_none()
    if name is not None:
        await _upsert(conn, name, {"history": words(" ".join(history))})
