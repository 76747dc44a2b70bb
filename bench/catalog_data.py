"""A large catalog written straight into a migrated metadata database, for
``bench/catalog_pages.py``: bulk inserts (``executemany`` in one transaction on SQLite,
``COPY`` on PostgreSQL), deterministic (a fixed seed).

The shape: ``workspaces`` organisations named ``ws000``...; images spread over them round
robin, half internal (pushed) and half external (registered by reference), every one with a
repository row named like it whose visibility is the image's (one in three public); every
image has ``versions`` versions. Internal versions are mostly ``available`` with known
platforms and sizes (else ``failed``: the server would inspect ``pending`` ones while it is
measured); external ones are ``unverified`` (no platforms, no size) or ``reachable``. One in
ten versions is a ``bench``.

Search (``GET /api/v1/search``) finds them through their documents, written here as the
migration's backfill would (name and description words), and through their packages: every
version has ``python`` ``3.<version>``, the versions of the ``samtools ...`` images (one in
eight) also ``samtools`` ``1.<version>``.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

SEED = 17
WORDS = ("aligner", "caller", "samtools", "pytorch", "assembler", "viewer", "indexer", "trimmer")
FIELDS = ("BAM files", "variants", "single cells", "proteins", "long reads", "images", "RNA")
PLATFORM_SETS = ('["linux/amd64"]', '["linux/amd64", "linux/arm64/v8"]', '["linux/arm64/v8"]')
IMAGE_COLUMNS = (
    "workspace_id",
    "name",
    "description",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
)
VERSION_COLUMNS = (
    "image_id",
    "version",
    "source",
    "kind",
    "status",
    "external_reference",
    "digest",
    "compressed_size",
    "platforms",
    "created_at",
    "created_by",
    "updated_at",
)


@dataclass(frozen=True)
class Shape:
    images: int
    versions: int  # per image
    workspaces: int = 100

    def workspace_name(self, index: int) -> str:
        return f"ws{index:03d}"

    def image_name(self, index: int) -> str:
        return f"{self.workspace_name(index % self.workspaces)}/tool-{index:06d}"

    @property
    def total_versions(self) -> int:
        return self.images * self.versions


def _image_rows(shape: Shape, workspace_ids: list[int], now: float) -> Iterator[tuple[Any, ...]]:
    for i in range(shape.images):
        description = f"{WORDS[i % len(WORDS)]} for {FIELDS[i % len(FIELDS)]}"
        yield (
            workspace_ids[i % shape.workspaces],
            shape.image_name(i),
            description,
            now,
            "bench",
            now,
            "bench",
        )


def _repository_rows(shape: Shape, workspace_ids: list[int], now: float) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(SEED)
    for i in range(shape.images):  # every image has its repository: one visibility for both
        visibility = "public" if rng.random() < 1 / 3 else "private"
        yield (shape.image_name(i), now, workspace_ids[i % shape.workspaces], visibility)


def _version_rows(shape: Shape, image_ids: list[int], now: float) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(SEED + 1)
    for i in range(shape.images):
        internal = i % 2 == 0
        for j in range(shape.versions):
            version = f"{j}.{i % 10}.0"
            kind = "bench" if rng.random() < 0.1 else "tool"
            updated = now - rng.random() * 365 * 86400
            digest = f"sha256:{rng.getrandbits(256):064x}"
            reference: str | None = None
            if internal:
                status = "available" if rng.random() < 0.95 else "failed"  # a pending one would be inspected
                known = status == "available"
            else:
                known = rng.random() < 0.5
                status = "reachable" if known else "unverified"
                reference = f"docker.io/lab/tool{i}:{version}"
            platforms = rng.choice(PLATFORM_SETS) if known else "[]"
            size = rng.randrange(1 << 20, 1 << 32) if known else None
            source = "internal" if internal else "external"
            row = (image_ids[i], version, source, kind, status, reference, digest, size, platforms)
            yield (*row, updated, "bench", updated)


# Search documents and packages, written from the rows above in SQL (the same on both databases).
DOCUMENTS = (
    "INSERT INTO search_documents (name, image_id, title, body, history, dockerfile, updated_at) "
    "SELECT name, id, lower(replace(replace(name, '/', ' '), '-', ' ')), lower(description), '', '', "
    "created_at FROM images"
)
PACKAGES = (
    "INSERT INTO version_packages (version_id, ecosystem, name, name_key, version, platform) "
    "SELECT v.id, 'python', 'python', 'python', '3.' || v.version, '' FROM image_versions v",
    "INSERT INTO version_packages (version_id, ecosystem, name, name_key, version, platform) "
    "SELECT v.id, 'deb', 'samtools', 'samtools', '1.' || v.version, '' FROM image_versions v "
    "JOIN images i ON i.id = v.image_id WHERE i.description LIKE 'samtools%'",
    # Each version's scan, as the server's package index records it: without one the server's
    # sweep would index the versions again, find no layers (the digests are made up) and clear
    # the packages written here while the bench runs.
    "INSERT INTO version_package_scans (version_id, state, digest, scanned_at, packages, bytes_read) "
    "SELECT v.id, 'succeeded', v.digest, v.created_at, "
    "(SELECT count(*) FROM version_packages p WHERE p.version_id = v.id), 0 FROM image_versions v",
)
PG_TSV = (
    "UPDATE search_documents SET tsv = setweight(to_tsvector('simple', title), 'A') "
    "|| setweight(to_tsvector('simple', body), 'B')"
)


def fill_sqlite(path: str, shape: Shape) -> float:
    """Write the catalog into the SQLite database at ``path``; seconds taken."""
    started = time.perf_counter()
    now = time.time()
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO workspaces (name, kind, description, default_visibility, created_at) "
            "VALUES (?, 'org', '', 'private', ?)",
            [(shape.workspace_name(w), now) for w in range(shape.workspaces)],
        )
        ids = dict(conn.execute("SELECT name, id FROM workspaces").fetchall())
        workspace_ids = [ids[shape.workspace_name(w)] for w in range(shape.workspaces)]
        # The column names are this module's constants, never input; the values are bound.
        conn.executemany(
            f"INSERT INTO images ({', '.join(IMAGE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            _image_rows(shape, workspace_ids, now),
        )
        conn.executemany(
            "INSERT INTO repositories (name, created_at, workspace_id, visibility) VALUES (?, ?, ?, ?)",
            _repository_rows(shape, workspace_ids, now),
        )
        image_ids = _image_ids(conn.execute("SELECT name, id FROM images").fetchall(), shape)
        placeholders = ", ".join("?" for _ in VERSION_COLUMNS)
        conn.executemany(
            f"INSERT INTO image_versions ({', '.join(VERSION_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
            _version_rows(shape, image_ids, now),
        )
        for statement in (DOCUMENTS, *PACKAGES):
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def _image_ids(rows: list[tuple[str, int]], shape: Shape) -> list[int]:
    ids = dict(rows)
    return [ids[shape.image_name(i)] for i in range(shape.images)]


async def fill_postgres(dsn: str, shape: Shape) -> float:
    """Write the catalog into the PostgreSQL database ``dsn`` (a plain ``postgresql://`` URL)
    with ``COPY``, then ``ANALYZE`` (what autovacuum does soon after a bulk load); seconds."""
    started = time.perf_counter()
    now = time.time()
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO workspaces (name, kind, description, default_visibility, created_at) "
                "VALUES ($1, 'org', '', 'private', $2)",
                [(shape.workspace_name(w), now) for w in range(shape.workspaces)],
            )
            ids = {row[0]: row[1] for row in await conn.fetch("SELECT name, id FROM workspaces")}
            workspace_ids = [ids[shape.workspace_name(w)] for w in range(shape.workspaces)]
            await conn.copy_records_to_table(
                "images",
                records=_image_rows(shape, workspace_ids, now),
                columns=list(IMAGE_COLUMNS),
            )
            await conn.copy_records_to_table(
                "repositories",
                records=_repository_rows(shape, workspace_ids, now),
                columns=["name", "created_at", "workspace_id", "visibility"],
            )
            image_ids = _image_ids(
                [(row[0], row[1]) for row in await conn.fetch("SELECT name, id FROM images")], shape
            )
            await conn.copy_records_to_table(
                "image_versions", records=_version_rows(shape, image_ids, now), columns=list(VERSION_COLUMNS)
            )
            for statement in (DOCUMENTS, *PACKAGES, PG_TSV):
                await conn.execute(statement)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started
