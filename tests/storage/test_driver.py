"""Statements sent straight to the driver (storage/driver.py) belong to the unit of work's
transaction, on both databases: they commit with it, roll back with it, see its earlier
writes, and a unique violation is the same UniqueViolation the repositories raise."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy import Boolean, Integer, bindparam, column, literal, select, table, text

from courtyard.storage import driver
from courtyard.storage.engine import Database
from courtyard.storage.errors import UniqueViolation
from tests.support import DatabaseFactory


def _sql(database: Database, sqlite: str, postgresql: str) -> str:
    return sqlite if database.is_sqlite else postgresql


async def _probe(databases: DatabaseFactory, *, pool_size: int = 10) -> Database:
    database = Database(await databases.create(), pool_size=pool_size)
    async with database.write() as conn:
        await conn.execute(text("CREATE TABLE driver_probe (n INTEGER PRIMARY KEY)"))
    return database


def _insert_probe(database: Database) -> str:
    """One row into driver_probe, ``n`` bound by position."""
    return _sql(
        database,
        "INSERT INTO driver_probe (n) VALUES (?)",
        "INSERT INTO driver_probe (n) VALUES ($1)",
    )


async def _count(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM driver_probe"))).scalar_one())


async def test_a_first_statement_through_the_driver_rolls_back_with_the_transaction(
    databases: DatabaseFactory,
) -> None:
    # On PostgreSQL SQLAlchemy sends BEGIN only with its first statement: a driver statement
    # that came first would run (and commit) on its own if the driver did not begin.
    database = await _probe(databases)
    insert = _sql(
        database,
        "INSERT INTO driver_probe (n) VALUES (?) RETURNING n",
        "INSERT INTO driver_probe (n) VALUES ($1) RETURNING n",
    )
    returned: list[tuple[int, ...]] = []

    async def insert_then_fail() -> None:
        async with database.write() as conn:
            returned.extend(tuple(row) for row in await driver.fetch(conn, insert, (1,)))
            raise RuntimeError("undo")

    try:
        with pytest.raises(RuntimeError, match="undo"):
            await insert_then_fail()
        assert returned == [(1,)]
        assert await _count(database) == 0
        async with database.write() as conn:
            await driver.fetch(conn, insert, (2,))
            # SQLAlchemy's statements in the same transaction see the driver's write.
            seen = (await conn.execute(text("SELECT count(*) FROM driver_probe"))).scalar_one()
            assert seen == 1
        assert await _count(database) == 1
    finally:
        await database.dispose()


async def test_many_rows_and_unique_violations(databases: DatabaseFactory) -> None:
    database = await _probe(databases)
    insert = _insert_probe(database)
    try:
        async with database.write() as conn:
            await driver.execute_many(conn, insert, [(1,), (2,), (3,)])
        assert await _count(database) == 3
        with pytest.raises(UniqueViolation):
            async with database.write() as conn:
                await driver.execute_many(conn, insert, [(4,), (2,)])
        with pytest.raises(UniqueViolation):
            async with database.write() as conn:
                await driver.fetch(conn, insert, (3,))
        assert await _count(database) == 3  # the failed transactions left nothing
    finally:
        await database.dispose()


def _probe_statements_into(seen: list[str]) -> Callable[[str], None]:
    """An observer keeping only this module's statements: observers see every statement of
    the process, and the session's server runs its own (event-log catch-up, replays) at any
    moment."""

    def observe(sql: str) -> None:
        if "driver_probe" in sql:
            seen.append(sql)

    return observe


async def test_observers_see_every_driver_statement(databases: DatabaseFactory) -> None:
    database = await _probe(databases)
    seen: list[str] = []
    select = "SELECT n FROM driver_probe"
    observe = _probe_statements_into(seen)
    driver.observers.append(observe)
    try:
        async with database.read() as conn:
            assert await driver.fetch(conn, select) == []
    finally:
        driver.observers.remove(observe)
        await database.dispose()
    assert seen == [select]


async def test_a_cancelled_statement_never_leaves_a_transaction_in_the_pool(
    databases: DatabaseFactory,
) -> None:
    # A socket's handshake is cancelled when its client goes away. On PostgreSQL a
    # cancellation between the driver's BEGIN and SQLAlchemy learning of it left an open
    # transaction on a pooled connection, and every later unit of work on it failed.
    database = Database(await databases.create(), pool_size=1)
    outcomes = {"after": 0}

    async def read() -> None:
        async with database.read() as conn:
            await driver.fetch(conn, "SELECT 1")

    try:
        for attempt in range(150):
            task = asyncio.create_task(read())
            await asyncio.sleep(random.Random(attempt).random() * 0.002)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with database.write() as conn:
                await conn.execute(text("SELECT 1"))
            outcomes["after"] += 1
    finally:
        await database.dispose()
    assert outcomes["after"] == 150


async def test_a_compiled_statement_renders_its_literal_parameters_once_per_value(
    databases: DatabaseFactory,
) -> None:
    # The page statements' row count is written into the SQL (a prepared statement per size);
    # the other parameters, repeated or not, are bound by position on both databases.
    database = await _probe(databases)
    probe = table("driver_probe", column("n", Integer))
    low = bindparam("low", type_=Integer)
    statement = (
        select(probe.c.n, literal(7, Integer).label("seven"))
        .where((probe.c.n >= low) & (probe.c.n != low + 1))
        .order_by(probe.c.n)
        .limit(bindparam("count", type_=Integer, literal_execute=True))
    )
    compiled = driver.Compiled(statement, ("count",))
    seen: list[str] = []
    observe = _probe_statements_into(seen)
    driver.observers.append(observe)
    try:
        async with database.write() as conn:
            for n in range(1, 11):
                await conn.execute(text("INSERT INTO driver_probe (n) VALUES (:n)"), {"n": n})
        async with database.read() as conn:
            first = await driver.fetch_compiled(conn, compiled, {"low": 3, "count": 3})
            again = await driver.fetch_compiled(conn, compiled, {"low": 5, "count": 3})
            longer = await driver.fetch_compiled(conn, compiled, {"low": 5, "count": 4})
        assert [tuple(row) for row in first] == [(3, 7), (5, 7), (6, 7)]
        assert [tuple(row) for row in again] == [(5, 7), (7, 7), (8, 7)]
        assert [tuple(row) for row in longer] == [(5, 7), (7, 7), (8, 7), (9, 7)]
        assert "LIMIT 3" in seen[0] and seen[0] == seen[1] and "LIMIT 4" in seen[2]
        # A parameter SQLAlchemy would convert (a boolean, on both databases) is refused.
        flagged = select(probe.c.n).where(bindparam("flag", type_=Boolean))
        async with database.read() as conn:
            with pytest.raises(TypeError, match="processing"):
                await driver.fetch_compiled(conn, driver.Compiled(flagged), {"flag": True})
    finally:
        driver.observers.remove(observe)
        await database.dispose()


# Units of work end on the driver where SQLAlchemy took no part (ADR 0026): SQLite's BEGIN and
# COMMIT go straight to sqlite3, and PostgreSQL's COMMIT straight to asyncpg.


async def test_a_unit_of_driver_statements_commits_and_reads_in_its_mode(
    databases: DatabaseFactory,
) -> None:
    database = await _probe(databases)
    insert = _insert_probe(database)
    try:
        async with database.write() as conn:
            await driver.execute_many(conn, insert, [(1,), (2,)])
            assert conn.in_transaction() is False  # SQLAlchemy took no part
        assert await _count(database) == 2
        if not database.is_sqlite:
            # The adapter's BEGIN still carries the unit's mode when the driver sends first.
            modes = "SELECT current_setting('transaction_read_only'), " + (
                "current_setting('transaction_isolation')"
            )
            async with database.read() as conn:
                assert tuple((await driver.fetch(conn, modes))[0]) == ("on", "repeatable read")
            async with database.write() as conn:
                assert tuple((await driver.fetch(conn, modes))[0]) == ("off", "read committed")
    finally:
        await database.dispose()


async def test_a_commit_the_database_refuses_raises_and_leaves_nothing_open(
    databases: DatabaseFactory,
) -> None:
    """A constraint checked at COMMIT: the unit fails with the database's error, nothing it
    wrote stays, and the next units of work run on a clean connection."""
    database = Database(await databases.create(), pool_size=2)
    schema = [
        "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id)"
        " DEFERRABLE INITIALLY DEFERRED)",
    ]
    orphan = "INSERT INTO child (id, parent_id) VALUES (1, 99)"
    try:
        async with database.write() as conn:
            for statement in schema:
                await driver.fetch(conn, statement)
        refused = (sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)
        with pytest.raises(refused, match=r"(?i)foreign key"):
            async with database.write() as conn:
                await driver.fetch(conn, orphan)  # accepted now, refused at COMMIT
        for _ in range(3):
            async with database.write() as conn:
                await driver.fetch(conn, "INSERT INTO parent (id) VALUES (99)")
                await driver.fetch(conn, orphan)
                await driver.fetch(conn, "DELETE FROM child")
                await driver.fetch(conn, "DELETE FROM parent")
        async with database.read() as conn:
            assert (await driver.fetch(conn, "SELECT count(*) FROM child"))[0][0] == 0
        pool = database.engine.pool  # dispose replaces the pool: count on the one in use
        await database.dispose()
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await database.dispose()


async def test_a_unit_cancelled_while_committing_is_never_reused(
    databases: DatabaseFactory,
) -> None:
    """Cancelled between its last statement and the end of its COMMIT: the connection's state
    is unknown, so the pool must not hand it out again with a transaction open."""
    database = await _probe(databases, pool_size=1)
    insert = _insert_probe(database)
    try:
        for n in range(20):
            task = asyncio.create_task(_write_one(database, insert, n))
            # Let the task run its statement, then cancel it somewhere in its ending.
            for _ in range(n % 4):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with database.write() as conn:
                assert conn.in_transaction() is False
                await driver.fetch(conn, "SELECT 1")
        async with database.read() as conn:
            stored = {row[0] for row in await driver.fetch(conn, "SELECT n FROM driver_probe")}
        assert stored <= set(range(20))
    finally:
        await database.dispose()


async def _write_one(database: Database, insert: str, n: int) -> None:
    async with database.write() as conn:
        await driver.fetch(conn, insert, (n,))
