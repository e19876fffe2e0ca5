"""A unit of work on embedded SQLite runs start to finish without handing the event loop to
other tasks (docs/adr/0022).

The inline driver never waits, so a unit of work has no reason to give the loop up; SQLAlchemy's
``async with engine.connect()`` closed the connection in a task of its own, which did. Under
load each of those turns was a millisecond or more, and a write transaction held the SQLite
writer's lock through them. SQLite is embedded, so this runs in both suites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from courtyard.storage.driver import fetch
from courtyard.storage.engine import Database


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, body TEXT)"))
    try:
        yield db
    finally:
        await db.dispose()


async def _other_tasks_ran_during(
    unit: Callable[[], AbstractAsyncContextManager[Any]], sql: str
) -> int:
    """How many of the callbacks queued before ``unit`` ran while it ran ``sql``."""
    loop = asyncio.get_running_loop()
    ran = 0

    def other() -> None:
        nonlocal ran
        ran += 1

    for _ in range(5):
        loop.call_soon(other)
    async with unit() as conn:
        await fetch(conn, sql)
    return ran


async def test_a_write_transaction_keeps_the_loop(database: Database) -> None:
    insert = "INSERT INTO probe (body) VALUES ('x') RETURNING id"
    assert await _other_tasks_ran_during(database.write, insert) == 0


async def test_reads_keep_the_loop(database: Database) -> None:
    count = "SELECT count(*) FROM probe"
    assert await _other_tasks_ran_during(database.read, count) == 0
    assert await _other_tasks_ran_during(lambda: database.read(consistent=False), count) == 0


async def test_the_connection_goes_back_to_the_pool(database: Database) -> None:
    """Closed in place or kept for the next unit of work (ADR 0025), every connection comes
    back: many more units of work than the pool holds run one after another, and only the
    kept ones (one writer, one reader) stay out of the pool until dispose."""
    for _ in range(50):
        async with database.write() as conn:
            await fetch(conn, "INSERT INTO probe (body) VALUES ('y')")
    async with database.read(consistent=False) as conn:
        assert (await fetch(conn, "SELECT count(*) FROM probe"))[0][0] == 50
    assert database.idle_connections == (1, 1)
    assert database.engine.pool.checkedout() == 2  # type: ignore[attr-defined]
    pool = database.engine.pool  # dispose replaces the pool: count on the one in use
    await database.dispose()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_units_of_work_reuse_the_kept_connection(database: Database) -> None:
    seen = set()
    for _ in range(3):
        async with database.read() as conn:
            seen.add(id(conn.sync_connection.connection.driver_connection))  # type: ignore[union-attr]
        async with database.read(consistent=False) as conn:
            seen.add(id(conn.sync_connection.connection.driver_connection))  # type: ignore[union-attr]
    assert len(seen) == 1


async def test_a_kept_connection_holds_no_old_snapshot(database: Database) -> None:
    """A read with no transaction of its own that sent a statement through SQLAlchemy began
    one; kept open, the next read on that connection would not see later commits."""
    async with database.read(consistent=False) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM probe"))).scalar_one() == 0
    async with database.write() as conn:
        await fetch(conn, "INSERT INTO probe (body) VALUES ('new')")
    async with database.read(consistent=False) as conn:
        assert (await fetch(conn, "SELECT count(*) FROM probe"))[0][0] == 1
        assert not conn.in_transaction()


async def test_a_failed_write_rolls_back_and_releases_the_writer(database: Database) -> None:
    async def failing_unit() -> None:
        async with database.write() as conn:
            await fetch(conn, "INSERT INTO probe (body) VALUES ('lost')")
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await failing_unit()
    async with database.write() as conn:
        rows = await fetch(conn, "SELECT count(*) FROM probe WHERE body = 'lost'")
    assert rows[0][0] == 0
    # The failed unit's connection went back to the pool; the one that read it is kept.
    assert database.idle_connections == (1, 0)
    assert database.engine.pool.checkedout() == 1  # type: ignore[attr-defined]


# BEGIN and COMMIT go straight to sqlite3 (ADR 0026); statements sent through SQLAlchemy in
# the same unit of work must still share its one transaction.


async def test_statements_through_sqlalchemy_and_the_driver_commit_together(
    database: Database,
) -> None:
    async with database.write() as conn:
        await fetch(conn, "INSERT INTO probe (body) VALUES ('driver')")
        await conn.execute(text("INSERT INTO probe (body) VALUES ('sqlalchemy')"))
        await fetch(conn, "INSERT INTO probe (body) VALUES ('driver again')")
    async with database.read() as conn:
        rows = await fetch(conn, "SELECT body FROM probe ORDER BY id")
    assert [row[0] for row in rows] == ["driver", "sqlalchemy", "driver again"]
    assert not conn.in_transaction()


async def test_a_failed_write_rolls_back_statements_sent_both_ways(database: Database) -> None:
    async def failing_unit() -> None:
        async with database.write() as conn:
            await fetch(conn, "INSERT INTO probe (body) VALUES ('driver')")
            await conn.execute(text("INSERT INTO probe (body) VALUES ('sqlalchemy')"))
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await failing_unit()
    async with database.write() as conn:
        assert (await fetch(conn, "SELECT count(*) FROM probe"))[0][0] == 0
        raw = conn.sync_connection.connection.driver_connection.raw  # type: ignore[union-attr]
        assert raw.in_transaction  # the writer's BEGIN IMMEDIATE, one level deep
    assert not raw.in_transaction


async def test_a_write_holds_the_database_lock_from_its_begin(
    database: Database, tmp_path: Path
) -> None:
    """``BEGIN IMMEDIATE``: another process's writer waits from the first statement on."""
    import sqlite3

    other = sqlite3.connect(tmp_path / "turns.db", timeout=0, isolation_level=None)
    try:
        async with database.write() as conn:
            await fetch(conn, "SELECT 1")  # a read only: a deferred BEGIN would take no lock
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_read_sees_one_snapshot_across_both_ways(database: Database) -> None:
    async with database.read() as conn:
        assert (await fetch(conn, "SELECT count(*) FROM probe"))[0][0] == 0
        async with database.write() as writer:
            await fetch(writer, "INSERT INTO probe (body) VALUES ('later')")
        assert (await conn.execute(text("SELECT count(*) FROM probe"))).scalar_one() == 0
        assert (await fetch(conn, "SELECT count(*) FROM probe"))[0][0] == 0
    async with database.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM probe"))).scalar_one() == 1


async def test_cancelled_writers_leave_the_lock_and_the_pool_as_they_found_them(
    database: Database,
) -> None:
    """One writer cancelled inside its unit, another while it waits for the writers' lock:
    neither holds the lock or a connection afterwards, and nothing either wrote stays."""
    inside = asyncio.Event()

    async def writer(body: str) -> None:
        async with database.write() as conn:
            await fetch(conn, f"INSERT INTO probe (body) VALUES ('{body}')")
            inside.set()
            await asyncio.sleep(60)

    holding = asyncio.create_task(writer("held"))
    await inside.wait()
    waiting = asyncio.create_task(writer("waited"))
    await asyncio.sleep(0.01)  # queued on the lock
    for task in (waiting, holding):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with asyncio.timeout(5):
        async with database.write() as conn:
            assert (await fetch(conn, "SELECT count(*) FROM probe"))[0][0] == 0
    assert database.idle_connections == (1, 0)
    assert database.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
