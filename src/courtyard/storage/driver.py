"""Hot statements straight to the database driver, inside the unit of work's transaction.

Every statement through SQLAlchemy's execution layer (``exec_driver_sql`` included) costs a
greenlet switch, an execution context and a result proxy: about 200 µs of CPU against asyncpg's
own 50 µs per statement on this project's 2-core reference machine, and several times
SQLite's own time for the small statements of a send. A lone send runs ten of them, so on the
group commit's path (docs/adr/0016) the SQL is written once per shape and handed to the
driver of the connection SQLAlchemy already holds: the same connection, the same transaction,
begun and ended by SQLAlchemy as before.

- SQLite: the inline ``sqlite3`` connection (``sqlite_inline``); a statement runs at once.
- PostgreSQL: the asyncpg connection; its transaction is begun first if SQLAlchemy has not
  yet sent BEGIN (its asyncpg adapter begins lazily, at the first statement).
- Anything else (the threaded aiosqlite engine used for heavy reads): through
  ``exec_driver_sql``, so callers need not know which connection they hold.

SQL comes as text (``?`` or ``$n``), as :class:`Portable` (one text for both databases), or as
:class:`Compiled` (a Core statement compiled once per database, for statements too large to
write twice, such as the history page).

Unique-constraint failures become :class:`UniqueViolation`, as they do through SQLAlchemy.
Observers (the test suite's statement counter) see every statement, as SQLAlchemy's
``before_cursor_execute`` would show them.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from courtyard.storage.errors import UniqueViolation
from courtyard.storage.sqlite_inline import InlineConnection

Row = Sequence[Any]
T = TypeVar("T")
StatementObserver = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Portable:
    """One statement for both databases, written with PostgreSQL's ``$n`` placeholders;
    SQLite gets the same SQL with ``?n`` (numbered parameters, bound by position). Every
    ``$`` followed by digits is taken for a placeholder: keep ``$`` out of literals."""

    postgresql: str
    sqlite: str

    @classmethod
    def of(cls, sql: str) -> Portable:
        """The statement ``sql`` (``$1``, ``$2`` … placeholders)."""
        return cls(sql, re.sub(r"\$(\d+)", r"?\1", sql))


class Compiled:
    """A SQLAlchemy Core statement run through the driver: compiled once per database, and its
    SQL text rendered once per value of its ``literal_execute`` parameters (``literal``, such
    as a page's row count, written into the text so that PostgreSQL plans each size once), so
    an execution costs a dictionary lookup and a list of values. Only for statements whose
    parameters need no type processing (integers and text), checked when first compiled."""

    __slots__ = ("_literal", "_sqlite_indexed_by", "_statement", "_texts")

    #: Rendered texts kept per statement (page sizes are bounded, but keep it bounded anyway).
    MAX_TEXTS = 1024

    def __init__(
        self,
        statement: Any,
        literal: tuple[str, ...] = (),
        *,
        sqlite_indexed_by: tuple[str, str] | None = None,
    ) -> None:
        self._statement = statement
        self._literal = literal
        # (table, index): on SQLite every ``FROM table`` of the statement reads through
        # ``index`` (``INDEXED BY``; SQLAlchemy's SQLite compiler renders no table hints).
        # SQLite refuses the statement if the index cannot answer it, so a wrong hint fails
        # loudly instead of scanning.
        self._sqlite_indexed_by = sqlite_indexed_by
        self._texts: dict[tuple[Any, ...], tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def render(self, dialect: Any, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The SQL for ``dialect`` and its positional values for ``params``."""
        key = (dialect.name, *(params[name] for name in self._literal))
        entry = self._texts.get(key)
        if entry is None:
            compiled = self._statement.compile(dialect=dialect)
            if compiled._bind_processors:  # a type SQLAlchemy converts: not for this path
                raise TypeError(f"parameters need processing: {sorted(compiled._bind_processors)}")
            state = compiled.construct_expanded_state(params)
            constants = {k: v for k, v in state.parameters.items() if k not in params}
            sql = state.statement
            if self._sqlite_indexed_by is not None and dialect.name == "sqlite":
                table, index = self._sqlite_indexed_by
                sql = re.sub(rf"\bFROM {table}\b", f"FROM {table} INDEXED BY {index}", sql)
            entry = (sql, tuple(state.positiontup or ()), constants)
            if len(self._texts) < self.MAX_TEXTS:
                self._texts[key] = entry
        sql, names, constants = entry
        return sql, [params[name] if name in params else constants[name] for name in names]


async def fetch_compiled(
    conn: AsyncConnection, statement: Compiled, params: dict[str, Any]
) -> list[Row]:
    """Run a :class:`Compiled` statement with named parameters and return its rows."""
    sql, values = statement.render(conn.dialect, params)
    return await fetch(conn, sql, values)


#: Called with each statement's SQL before it runs (tests count statements with this).
observers: list[StatementObserver] = []


def _observe(sql: str) -> None:
    for observer in observers:
        observer(sql)


@contextlib.contextmanager
def _unique_violations() -> Iterator[None]:
    """SQLite's unique-constraint failures (straight from sqlite3, or wrapped by SQLAlchemy
    on the threaded engine) as :class:`UniqueViolation`."""
    try:
        yield
    except (sqlite3.IntegrityError, IntegrityError) as exc:
        text = str(exc.orig if isinstance(exc, IntegrityError) else exc)
        if "UNIQUE constraint failed:" not in text:
            raise
        raise UniqueViolation(text.split("constraint failed:", 1)[1].strip()) from exc


async def fetch(
    conn: AsyncConnection, statement: str | Portable, params: Sequence[Any] = ()
) -> list[Row]:
    """Run one statement with positional parameters (``?`` on SQLite, ``$n`` on PostgreSQL,
    or a :class:`Portable` for both) and return its rows (none for a statement without)."""
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    if isinstance(statement, Portable):
        sql = statement.postgresql if isinstance(driver, asyncpg.Connection) else statement.sqlite
    else:
        sql = statement
    if observers:
        _observe(sql)
    if isinstance(driver, asyncpg.Connection):
        rows: list[Row] = await _on_asyncpg(conn, lambda: driver.fetch(sql, *params))
        return rows
    with _unique_violations():
        if isinstance(driver, InlineConnection):
            return driver.raw.execute(sql, params).fetchall()
        return list(await conn.exec_driver_sql(sql, tuple(params)))


async def execute_many(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement once per row of parameters (no rows returned)."""
    if not rows:
        return
    if observers:
        _observe(sql)
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    if isinstance(driver, asyncpg.Connection):
        await _on_asyncpg(conn, lambda: driver.executemany(sql, rows))
        return
    with _unique_violations():
        if isinstance(driver, InlineConnection):
            driver.raw.executemany(sql, rows)
        else:
            await conn.exec_driver_sql(sql, list(map(tuple, rows)))


async def _on_asyncpg(conn: AsyncConnection, statement: Callable[[], Awaitable[T]]) -> T:
    """Run ``statement()`` on the unit of work's asyncpg connection, inside its transaction."""
    try:
        await _begun(conn)
        return await statement()
    except asyncpg.UniqueViolationError as exc:
        raise UniqueViolation(exc.constraint_name) from exc
    except asyncpg.PostgresError:
        raise  # refused by the server: the unit of work rolls back as usual
    except BaseException:
        # Cancelled (a client went away) or cut off mid-statement: the connection's state is
        # unknown — a BEGIN may have reached the server without SQLAlchemy's adapter knowing,
        # and the pool does not roll back on return. Never reuse it; SQLAlchemy does the same
        # for its own statements. Outside a greenlet this closes the connection at once.
        with contextlib.suppress(Exception):
            conn.sync_connection.invalidate()  # type: ignore[union-attr]
        raise


async def _begun(conn: AsyncConnection) -> None:
    """PostgreSQL: make sure the unit of work's transaction has begun on the server.

    SQLAlchemy's asyncpg adapter sends BEGIN (with the isolation level and read-only flag the
    unit of work asked for) at its first statement; a statement sent straight to asyncpg
    before that would run outside the transaction.
    """
    adapter: Any = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
    if adapter._transaction is None and adapter.isolation_level != "autocommit":
        await adapter._start_transaction()
