"""Engine and transactions: SQLAlchemy Core behind one async interface.

``Database.read()`` and ``Database.write()`` open a transaction and yield a
:class:`Connection` (``await conn.execute(statement)``).

On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers
queue on the busy timeout instead of failing on a lock upgrade; writes run in aiosqlite's
thread because that wait may be long. Reads run inline on the event loop: under WAL a
reader never waits for a lock, and an indexed lookup takes microseconds, where the thread
hand-offs of the async driver cost ~2 ms (measured: 7 us inline, 1.85 ms through aiosqlite).
On PostgreSQL both are READ COMMITTED transactions on the asyncpg pool.

A transaction PostgreSQL aborts as a deadlock or a serialization failure (SQLSTATE 40P01,
40001) raises :class:`~dockyard.errors.Contention`: nothing was written, and the edges answer
"try again" (409 on ``/api``, ``UNAVAILABLE`` on ``/v2``) instead of a 500.

A write that fails because the database's volume is full raises
:class:`~dockyard.volumes.InsufficientStorage`. SQLite needs room in its write-ahead log even
to delete, so a SQLite database keeps a preallocated reserve file beside it, which garbage
collection releases when it finds the disk full (:meth:`Database.release_reserve`).

:meth:`Database.after_commit_touching` runs a hook after every committed write transaction
that changed rows of some tables (Core INSERT, UPDATE, DELETE with a nonzero row count; a
statement with the execution option ``QUIET`` does not count): the per-process caches of
permission facts learn of every change that way, whoever wrote it.

``fetch_one`` is for the few hot-path lookups (manifest GET/HEAD, blob GET/HEAD): plain SQL
straight to the driver, because SQLAlchemy's per-execution cost (~200 us on these
machines, even with pre-built statements) is ten times the query's own.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.schema import Table

from dockyard.errors import Contention
from dockyard.volumes import METADATA_DATABASE, InsufficientStorage, Reserve

RESERVE_BYTES = 16 * 1024 * 1024  # room for garbage collection to record its deletions
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full
QUIET = "dockyard_quiet"  # execution option: this write changes nothing a watcher cares about
_TOUCHED = "dockyard_touched"  # connection info: the transaction changed a watched table
_PG_CONTENTION = {"40P01": "a deadlock", "40001": "a serialization failure"}  # SQLSTATE


class Connection(Protocol):
    """What ``read()`` and ``write()`` yield: an async ``execute``."""

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[*tuple[Any, ...]]: ...


class _Inline:
    """A synchronous connection behind the async ``execute`` (SQLite reads, see above)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: SyncConnection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[*tuple[Any, ...]]:
        return self._conn.execute(statement, parameters)


_PLACEHOLDER = re.compile(r"\$\d+")


def _disk_full(exc: DBAPIError) -> bool:
    """Whether the driver reported a full volume (SQLite's SQLITE_FULL, PostgreSQL's disk_full)."""
    orig: BaseException | None = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        return True
    while orig is not None:  # aiosqlite's adapter re-raises SQLite's error without its code
        if isinstance(orig, sqlite3.Error):
            code = getattr(orig, "sqlite_errorcode", None)
            if code is not None:
                return bool(code & 0xFF == sqlite3.SQLITE_FULL)
            if str(orig) == "database or disk is full":
                return True
        orig = orig.__cause__
    return False


def _contention(exc: DBAPIError) -> Contention | None:
    """PostgreSQL's deadlock or serialization failure as :class:`Contention`, else None."""
    what = _PG_CONTENTION.get(getattr(exc.orig, "sqlstate", None) or "")
    if what is None:
        return None
    return Contention(f"a concurrent change got in the way ({what}); nothing was changed, try again")


def _sqlite_reserve(url: str, size: int) -> Reserve | None:
    path = make_url(url).database or ""
    if size <= 0 or path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Reserve(Path(path).with_name(Path(path).name + ".reserve"), size)


class Database:
    def __init__(self, url: str, pool_size: int = 10, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.reserve = _sqlite_reserve(url, reserve_bytes) if self.is_sqlite else None
        self._pool_size = pool_size
        self._inline_reader: Engine | None = None
        self._raw_sqlite: sqlite3.Connection | None = None
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_lock = asyncio.Lock()  # one pool, however many first calls race
        self._sql_cache: dict[str, str] = {}
        self._watched: frozenset[str] = frozenset()
        self._on_touch: Callable[[], Awaitable[None]] | None = None
        if self.is_sqlite:
            self._writer = _sqlite_engine(url, "BEGIN IMMEDIATE")
            self._inline_reader = create_engine(url.replace("+aiosqlite", "+pysqlite", 1))
            _configure_sqlite(self._inline_reader, "BEGIN")
        else:
            self._writer = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)

    @property
    def engine(self) -> AsyncEngine:
        return self._writer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A read transaction; :class:`Contention` if PostgreSQL aborted it (a locking read)."""
        if self._inline_reader is not None:
            with self._inline_reader.begin() as conn:
                yield _Inline(conn)
        else:
            try:
                async with self._writer.begin() as async_conn:
                    yield async_conn
            except DBAPIError as exc:
                contention = _contention(exc)
                if contention is not None:
                    raise contention from exc
                raise

    def after_commit_touching(self, tables: frozenset[str], hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook`` after each committed write transaction that changed rows of ``tables``
        (one watcher per database)."""
        self._watched = tables
        self._on_touch = hook
        event.listen(self._writer.sync_engine, "after_execute", self._note_touch)

    def _note_touch(self, conn: SyncConnection, statement: Any, *args: Any) -> None:
        if not isinstance(statement, UpdateBase):
            return
        if getattr(statement.table, "name", None) not in self._watched:
            return
        if statement.get_execution_options().get(QUIET) or args[-1].rowcount == 0:
            return
        conn.info[_TOUCHED] = True

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A write transaction; :class:`InsufficientStorage` if the database's volume is full,
        :class:`Contention` if PostgreSQL aborted it as a deadlock or serialization failure."""
        touched = False
        try:
            async with self._writer.begin() as conn:
                try:
                    yield conn
                finally:  # the connection goes back to the pool: never leave the mark on it
                    touched = bool(conn.info.pop(_TOUCHED, False))
        except DBAPIError as exc:
            if _disk_full(exc):
                raise InsufficientStorage(METADATA_DATABASE) from exc
            contention = _contention(exc)
            if contention is not None:
                raise contention from exc
            raise
        if touched and self._on_touch is not None:  # committed
            await self._on_touch()

    def ensure_reserve(self) -> bool:
        """Hold the SQLite reserve (blocking file I/O); False if there is no room for it now."""
        return self.reserve is not None and self.reserve.ensure()

    def release_reserve(self) -> bool:
        """Give up the SQLite reserve so that a write that frees space can run on a full disk;
        False if there was none to give up (PostgreSQL, or released already)."""
        return self.reserve is not None and self.reserve.release()

    @property
    def raw_dsn(self) -> str:
        """The PostgreSQL URL for the driver itself (asyncpg), without SQLAlchemy's dialect."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def fetch_one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        """One row of a read-only query in plain SQL with ``$1, $2, ...`` placeholders.

        A single statement sees one consistent snapshot (autocommit). Hot paths only.
        """
        if self.is_sqlite:
            if self._raw_sqlite is None:
                self._raw_sqlite = _raw_sqlite_reader(self.url)
            translated = self._sql_cache.get(sql)
            if translated is None:
                translated = self._sql_cache[sql] = _PLACEHOLDER.sub("?", sql)
            row: tuple[Any, ...] | None = self._raw_sqlite.execute(translated, args).fetchone()
            return row
        pool = self._raw_pool
        if pool is None:
            pool = await self._open_raw_pool()
        record = await pool.fetchrow(sql, *args)
        return None if record is None else tuple(record)

    async def _open_raw_pool(self) -> asyncpg.Pool:
        async with self._raw_lock:
            if self._raw_pool is None:
                self._raw_pool = await asyncpg.create_pool(self.raw_dsn, min_size=1, max_size=self._pool_size)
            return self._raw_pool

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """A dialect INSERT, so callers can add ``on_conflict_do_nothing`` and friends."""
        if self.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def dispose(self) -> None:
        await self._writer.dispose()
        if self._inline_reader is not None:
            self._inline_reader.dispose()
        if self._raw_sqlite is not None:
            self._raw_sqlite.close()
            self._raw_sqlite = None
        async with self._raw_lock:  # waits for a pool being opened, then closes it
            pool, self._raw_pool = self._raw_pool, None
        if pool is not None:
            await pool.close()


def _raw_sqlite_reader(url: str) -> sqlite3.Connection:
    path = make_url(url).database or ""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _sqlite_engine(url: str, begin: str) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 30})
    _configure_sqlite(engine.sync_engine, begin)
    return engine


def _configure_sqlite(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        conn.exec_driver_sql(begin)
