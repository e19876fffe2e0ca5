"""Database connections for SQLite (embedded, the default) and PostgreSQL (production).

One URL chooses the backend. SQLite runs in WAL mode with one writer at a time (an in-process
lock plus ``BEGIN IMMEDIATE`` across processes), which avoids ``SQLITE_BUSY`` upgrades;
readers never block. PostgreSQL uses a normal pool at READ COMMITTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from courtyard.storage.checkpoint import Checkpointer
from courtyard.storage.sqlite_inline import InlineConnection, inline_connector
from courtyard.storage.writers_lock import WritersLock

logger = logging.getLogger(__name__)

background_work: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "courtyard_background_work", default=False
)
"""Set by housekeeping loops, so statement counters (tests, diagnostics) can tell their
queries from the ones a request makes."""

_WRITE_OPTION = "courtyard_write"

#: Bytes of write-ahead log file kept once the log is rewound (``journal_size_limit``).
#: SQLite reuses the file from its start but never shortens it: a spike, such as writes
#: while a long read held the checkpoint back, kept its disk space for good. Under S6's
#: steady load the log stays under 8 MB, so this trims only spikes (ADR 0025).
WAL_SIZE_LIMIT = 16 * 1024 * 1024

#: Seconds after which PostgreSQL's pool replaces a connection (and a kept one goes back to it).
POOL_RECYCLE = 1800


def normalise_database_url(raw: str) -> URL:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    url = make_url(raw)
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(
            f"unsupported database URL scheme {url.drivername!r}: use sqlite:/// or postgresql://"
        )
    return url


class Database:
    """An async engine plus the transaction discipline Courtyard relies on."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalise_database_url(url)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        # Every connection use ends in an explicit commit or rollback, so the pool need not
        # roll back again when a connection is returned.
        options: dict[str, Any] = {
            "echo": echo,
            "pool_size": pool_size,
            "max_overflow": pool_size,
            "pool_reset_on_return": None,
        }
        self._sqlite_writer = WritersLock() if self.is_sqlite else None
        #: Awaited by ``dispose`` first: writes still owed (storage/search_backlog.py).
        self.before_dispose: list[Callable[[], Awaitable[None]]] = []
        # The loop the writers run on, known from the first write: the checkpoint thread
        # pauses them through it (_writers_held).
        self._writers_loop: asyncio.AbstractEventLoop | None = None
        if self.is_sqlite:
            self._prepare_sqlite_file()
            path = self.url.database or ""
            # Ordinary statements run inline on the event loop (see sqlite_inline); long reads
            # use aiosqlite's thread so they cannot stall everyone else.
            self.engine: AsyncEngine = create_async_engine(
                self.url, async_creator=inline_connector(path, timeout=10), **options
            )
            self.heavy_engine: AsyncEngine = create_async_engine(
                self.url, connect_args={"timeout": 30}, **options
            )
            # Checkpoints run on a thread of their own (storage/checkpoint.py), not inside
            # whichever commit passes the log's threshold on the event loop.
            self._checkpointer = (
                Checkpointer(path, hold=self._writers_held) if path and path != ":memory:" else None
            )
            _install_sqlite_hooks(self.engine, checkpoints=self._checkpointer is not None)
            _install_sqlite_hooks(self.heavy_engine, checkpoints=self._checkpointer is not None)
            if self._checkpointer is not None:
                self._checkpointer.start()
        else:
            self.engine = create_async_engine(self.url, pool_recycle=POOL_RECYCLE, **options)
            self.heavy_engine = self.engine
            self._checkpointer = None
        # The options of each kind of unit of work, set once on engine copies that share the
        # pool: setting them on every connection was one more trip through SQLAlchemy's
        # greenlet bridge per transaction.
        self._writer = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._reader = self.engine
        self._heavy_reader = self.heavy_engine
        # Inline SQLite connections kept open between units of work (ADR 0025): the write
        # lock admits one writer at a time, and inline reads rarely overlap. Together they
        # keep at most half the pool, so a unit of work waiting on the pool is always served.
        self._idle_writers = _IdleConnections(self._writer, keep=1 if pool_size >= 2 else 0)
        self._idle_readers = _IdleConnections(self._reader, keep=max(0, pool_size // 2 - 1))
        self._idle_autocommit = _IdleConnections(self._reader, keep=0)
        if not self.is_sqlite:
            # PostgreSQL's default READ COMMITTED gives each statement its own snapshot; a
            # read unit of work promises one snapshot for all its statements (a history
            # page and its reactions, a replay and its membership changes). asyncpg sets
            # this on its BEGIN: no extra round trip. SQLite's deferred BEGIN already
            # reads one snapshot in WAL mode.
            self._reader = self._heavy_reader = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            # Kept PostgreSQL connections (ADR 0026): units of work run side by side here (no
            # writers' lock), so each kind keeps up to a quarter of the pool, half in all.
            # A kept connection goes back to the pool within ``POOL_RECYCLE`` seconds, where
            # the pool's own age check applies to it.
            keep = max(1, pool_size // 4) if pool_size >= 2 else 0
            self._idle_writers = _IdleConnections(self._writer, keep=keep, hold=POOL_RECYCLE)
            self._idle_readers = _IdleConnections(self._reader, keep=keep, hold=POOL_RECYCLE)
            self._idle_autocommit = _IdleConnections(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                keep=keep,
                hold=POOL_RECYCLE,
            )

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded database."""
        return self.dialect == "sqlite"

    @property
    def idle_connections(self) -> tuple[int, int]:
        """Connections kept open between units of work: (writers, readers)."""
        return len(self._idle_writers), len(self._idle_readers) + len(self._idle_autocommit)

    def _prepare_sqlite_file(self) -> None:
        database = self.url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        if self._sqlite_writer is not None:
            if self._writers_loop is None:
                self._writers_loop = asyncio.get_running_loop()
            return _InlineUnit(self._idle_writers, "BEGIN IMMEDIATE", self._sqlite_writer)
        return _PooledUnit(self._idle_writers)

    def read(
        self, *, heavy: bool = False, consistent: bool = True
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read-only transaction with one consistent snapshot.

        ``heavy`` reads (scans, exports) run off the event loop on SQLite. ``consistent=False``
        runs each statement in its own implicit transaction, for reads whose statements need
        not see one snapshot (or that are one statement): on PostgreSQL no BEGIN and COMMIT
        round trips (autocommit); on SQLite, for statements sent through the driver
        (storage/driver.py), no BEGIN and COMMIT either, since the connection is in
        autocommit mode and a statement alone reads one snapshot. A statement sent through
        SQLAlchemy there begins a transaction as usual, rolled back at the end of the read
        (before the connection is kept for the next one, ADR 0025).
        """
        if self.is_sqlite:
            if heavy:
                return self._threaded_read()
            return _InlineUnit(self._idle_readers, "BEGIN" if consistent else None, None)
        return _PooledUnit(self._idle_readers if consistent else self._idle_autocommit)

    @asynccontextmanager
    async def _threaded_read(self) -> AsyncIterator[AsyncConnection]:
        """SQLite's heavy reads: the threaded driver, through SQLAlchemy as it expects."""
        async with self._heavy_reader.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _writers_held(self, timeout: float) -> Iterator[bool]:
        """From another thread: hold SQLite's writer lock on the writers' loop meanwhile.

        Yields whether the lock was taken within ``timeout`` seconds. The loop keeps running
        (reads, deliveries, frames); only write transactions wait. Used by the checkpoint
        thread to copy the log's last frames with no write in progress (storage/checkpoint.py).
        """
        loop, lock = self._writers_loop, self._sqlite_writer
        if loop is None or lock is None or loop.is_closed():
            yield False
            return
        taken = threading.Event()
        released = asyncio.Event()

        async def hold() -> None:
            async with lock:
                taken.set()
                await released.wait()

        try:
            holder = asyncio.run_coroutine_threadsafe(hold(), loop)
        except RuntimeError:  # the loop is shutting down
            yield False
            return
        try:
            yield taken.wait(timeout)
        finally:
            holder.cancel()  # still waiting for the lock: stop waiting
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(released.set)

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any driver failure means "not ready"
            logger.warning("database ping failed", exc_info=logger.isEnabledFor(logging.DEBUG))
            return False
        return True

    async def dispose(self) -> None:
        """Finish owed writes, close every pooled connection (and stop checkpointing SQLite's
        log)."""
        for finish in self.before_dispose:
            try:
                await finish()
            except Exception:
                logger.exception("finishing writes before closing the database failed")
        await self._idle_writers.close()
        await self._idle_readers.close()
        await self._idle_autocommit.close()
        await self.engine.dispose()
        if self.heavy_engine is not self.engine:
            await self.heavy_engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)


class _IdleConnections:
    """Connections of one engine kept open between units of work (ADRs 0025 and 0026).

    Opening a connection (``AsyncConnection.start``: a greenlet, a pool checkout, SQLAlchemy's
    connection objects and options) and handing it back cost 30-45 µs of CPU per unit of
    work on SQLite, timed alone, and about a third of a small unit's CPU on PostgreSQL. A
    connection is put back here instead, with no transaction open, and the next unit of
    work of the same kind takes it: the execution options (a writer's ``BEGIN IMMEDIATE``,
    a reader's isolation level) stay with the engine it was opened from. ``hold``: seconds
    after which a connection goes back to the pool instead of being kept again.

    Closing a connection that is not kept runs in the caller's task. SQLAlchemy's ``async
    with engine.connect()`` closes in a task of its own, and waiting for that task cost two
    turns of the event loop per unit of work, under load a millisecond or more with
    SQLite's writer's lock held (ADR 0022). The pool does not roll back on return, so no
    close waits for the database; a failed PostgreSQL unit closes in a task of its own
    (``_PooledUnit``).
    """

    __slots__ = ("_engine", "_hold", "_idle", "_keep", "_taken")

    def __init__(self, engine: AsyncEngine, *, keep: int, hold: float | None = None) -> None:
        self._engine = engine
        self._keep = keep
        self._hold = hold
        self._idle: list[AsyncConnection] = []
        #: When each connection now out of the pool was taken from it (with ``hold`` only).
        self._taken: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._idle)

    async def take(self) -> AsyncConnection:
        """A kept connection, or a new one from the pool."""
        if self._idle:
            return self._idle.pop()
        conn = self._engine.connect()
        await conn.start()
        if self._hold is not None:
            self._taken[id(conn)] = time.monotonic()
        return conn

    async def give_back(self, conn: AsyncConnection) -> None:
        """Keep a connection whose unit of work ended cleanly (none open), or close it."""
        if len(self._idle) < self._keep and not conn.invalidated and self._may_hold(conn):
            self._idle.append(conn)
        else:
            await self.close_one(conn)

    async def close_one(self, conn: AsyncConnection) -> None:
        """Hand a connection back to the pool."""
        self._taken.pop(id(conn), None)
        await conn.close()

    def _may_hold(self, conn: AsyncConnection) -> bool:
        if self._hold is None:
            return True
        taken = self._taken.get(id(conn))
        return taken is not None and time.monotonic() - taken < self._hold

    async def close(self) -> None:
        """Close the kept connections (before the engine is disposed)."""
        while self._idle:
            await self.close_one(self._idle.pop())


class _InlineUnit:
    """One inline SQLite unit of work: a kept connection, BEGIN and COMMIT, all on sqlite3.

    ``begin`` is the BEGIN to send (None: a read with no transaction of its own) and ``lock``
    the in-process writers' lock, held from before BEGIN to after COMMIT.

    BEGIN and COMMIT through SQLAlchemy (``conn.begin()``) went through its greenlet bridge
    and transaction objects: about 60 µs of CPU per unit of work, timed alone, more than
    most units' statements. The lock, the connection and the transaction were also three
    nested generator context managers, where this is one object (ADR 0026). Statements sent
    through SQLAlchemy inside the unit still share its transaction: SQLAlchemy begins its
    own at the first one, finds sqlite3 already in ours (``_on_begin`` sends nothing then),
    and its commit or rollback ends both.
    """

    __slots__ = ("_begin", "_conn", "_idle", "_lock")

    def __init__(self, idle: _IdleConnections, begin: str | None, lock: WritersLock | None) -> None:
        self._idle = idle
        self._begin = begin
        self._lock = lock
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        lock = self._lock
        if lock is not None:
            await lock.acquire()
        try:
            conn = await self._idle.take()
            if self._begin is not None:
                try:
                    _sqlite3_of(conn).execute(self._begin)
                except BaseException:
                    await conn.close()
                    raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._conn = conn
        return conn

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if exc_type is not None:
                await _abandon(conn)
                return
            try:
                if conn.in_transaction():
                    # SQLAlchemy's own, begun by a statement sent through it: committed, or
                    # on a read with no transaction of its own rolled back, since kept open
                    # it would pin an old snapshot (ADR 0025).
                    await (conn.commit() if self._begin is not None else conn.rollback())
                elif self._begin is not None:
                    _sqlite3_of(conn).commit()
            except BaseException:
                await _abandon(conn)  # refused at COMMIT (a deferred constraint): still open
                raise
            await self._idle.give_back(conn)
        finally:
            if self._lock is not None:
                self._lock.release()


def _sqlite3_of(conn: AsyncConnection) -> sqlite3.Connection:
    driver: InlineConnection = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr, assignment]
    return driver.raw


async def _abandon(conn: AsyncConnection) -> None:
    """Roll back whatever a failed unit left open and hand its connection back to the pool
    (which does not roll back on return: Database.__init__)."""
    try:
        if not conn.invalidated:
            if conn.in_transaction():
                await conn.rollback()
            raw = _sqlite3_of(conn)
            if raw.in_transaction:
                raw.rollback()
    finally:
        await conn.close()


class _PooledUnit:
    """One PostgreSQL unit of work on a kept connection, ended on asyncpg (ADR 0026).

    SQLAlchemy's asyncpg adapter sends BEGIN (with the engine's isolation level and read-only
    flag) at the unit's first statement, whichever way it is sent (``driver._begun``).
    ``conn.begin()`` itself sent nothing, and its transaction objects and the greenlet bridge
    around COMMIT cost about 100 µs of CPU per unit of work. A unit whose statements all went
    through ``storage/driver.py`` commits straight on asyncpg; one that sent a statement
    through SQLAlchemy began SQLAlchemy's own transaction, which ends both.

    A connection whose unit ended cleanly is kept for the next unit of the same kind
    (``_IdleConnections``). A failed or cancelled unit's connection goes back to the pool in a
    task of its own, so a second cancellation cannot leave it checked out; one whose state is
    unknown (cancelled or cut off mid-statement or while ending) is invalidated first, the
    rule of ``driver._on_asyncpg``.
    """

    __slots__ = ("_conn", "_idle")

    def __init__(self, idle: _IdleConnections) -> None:
        self._idle = idle
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        self._conn = await self._idle.take()
        return self._conn

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if not conn.invalidated:  # invalidated mid-statement: nothing left to end
                adapter = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
                await _end_asyncpg_transaction(conn, adapter, commit=exc_type is None)
        except BaseException:
            await asyncio.shield(self._idle.close_one(conn))
            raise
        if exc_type is None:
            await self._idle.give_back(conn)
        else:
            await asyncio.shield(self._idle.close_one(conn))


async def _end_asyncpg_transaction(conn: AsyncConnection, adapter: Any, *, commit: bool) -> None:
    try:
        if conn.in_transaction():
            await (conn.commit() if commit else conn.rollback())
        elif adapter._transaction is not None:
            transaction, adapter._transaction = adapter._transaction, None
            await (transaction.commit() if commit else transaction.rollback())
    except (asyncpg.PostgresError, DBAPIError):
        raise  # the server answered: the transaction is over, the connection is fine
    except BaseException:
        with contextlib.suppress(Exception):
            conn.sync_connection.invalidate()  # type: ignore[union-attr]
        raise


def _install_sqlite_hooks(engine: AsyncEngine, *, checkpoints: bool) -> None:
    pragmas = [
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=30000",
        f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}",
        # Statement journals and sorts stay in memory: on disk (the default) a journal went to
        # a temporary file once past 64 KiB, and the send path's multi-row statements wrote
        # one on every batch (ADR 0020). VACUUM, the one statement whose temporary copy is as
        # large as the database, runs on a connection of its own (storage/upkeep.py) that
        # keeps the default.
        "PRAGMA temp_store=MEMORY",
    ]
    if checkpoints:
        pragmas.append("PRAGMA wal_autocheckpoint=0")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take control of BEGIN so write transactions can be IMMEDIATE (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "BEGIN"
        driver = conn.connection.driver_connection
        if isinstance(driver, InlineConnection):
            if driver.raw.in_transaction:
                return  # inside a unit of work that began on sqlite3 (_inline_transaction)
            # Straight to sqlite3 (storage/driver.py): through SQLAlchemy's execution path
            # the BEGIN alone cost more than the statements of a small unit of work.
            driver.raw.execute(sql)
        else:
            conn.exec_driver_sql(sql)
