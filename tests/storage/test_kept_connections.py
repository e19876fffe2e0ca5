"""Units of work keep their connection for the next unit of the same kind, on both databases
(ADRs 0025 and 0026): each kind keeps its own mode, a failed unit's connection goes back to the
pool, a kept connection returns to the pool after a while, and dispose leaves none out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from courtyard.storage import driver, engine
from courtyard.storage.engine import Database
from tests.support import DatabaseFactory


@pytest.fixture
async def database(databases: DatabaseFactory) -> AsyncIterator[Database]:
    db = Database(await databases.create(), pool_size=4)
    try:
        yield db
    finally:
        await db.dispose()


def _driver_connection(conn: object) -> int:
    return id(conn.sync_connection.connection.driver_connection)  # type: ignore[attr-defined]


async def _statements_share_a_transaction(database: Database, conn: object) -> bool:
    """Whether two statements of ``conn``'s unit, a moment apart, ran in one transaction."""
    if database.is_sqlite:
        raw = conn.sync_connection.connection.driver_connection.raw  # type: ignore[attr-defined]
        await driver.fetch(conn, "SELECT 1")  # type: ignore[arg-type]
        return bool(raw.in_transaction)
    first = await driver.fetch(conn, "SELECT now()")  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    second = await driver.fetch(conn, "SELECT now()")  # type: ignore[arg-type]
    return bool(first[0][0] == second[0][0])  # now() is the transaction's start


async def test_each_kind_of_unit_reuses_its_own_connection_in_its_own_mode(
    database: Database,
) -> None:
    seen: dict[str, set[int]] = {"write": set(), "read": set(), "autocommit": set()}
    for _ in range(3):
        async with database.write() as conn:
            seen["write"].add(_driver_connection(conn))
            assert await _statements_share_a_transaction(database, conn)
        async with database.read() as conn:
            seen["read"].add(_driver_connection(conn))
            assert await _statements_share_a_transaction(database, conn)
        async with database.read(consistent=False) as conn:
            seen["autocommit"].add(_driver_connection(conn))
            assert not await _statements_share_a_transaction(database, conn)
        if not database.is_sqlite:
            async with database.read() as conn:
                modes = "SELECT current_setting('transaction_read_only')"
                assert (await driver.fetch(conn, modes))[0][0] == "on"
            async with database.write() as conn:
                assert (await driver.fetch(conn, modes))[0][0] == "off"
    assert all(len(ids) == 1 for ids in seen.values()), seen
    kept = 2 if database.is_sqlite else 3  # SQLite's reads share one kept connection
    assert len(set.union(*seen.values())) == kept
    assert database.engine.pool.checkedout() == kept  # type: ignore[attr-defined]
    assert sum(database.idle_connections) == kept
    await database.dispose()
    assert database.idle_connections == (0, 0)


async def test_a_failed_unit_gives_its_connection_back_to_the_pool(database: Database) -> None:
    async with database.write() as conn:
        kept = _driver_connection(conn)
    before = database.engine.pool.checkedout()  # type: ignore[attr-defined]
    reused: list[int] = []

    async def failing_unit() -> None:
        async with database.write() as conn:
            reused.append(_driver_connection(conn))
            await driver.fetch(conn, "SELECT 1")
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await failing_unit()
    assert reused == [kept]
    assert database.idle_connections[0] == 0
    assert database.engine.pool.checkedout() == before - 1  # type: ignore[attr-defined]
    async with database.write() as conn:  # a connection from the pool, clean
        assert not conn.in_transaction()
        await driver.fetch(conn, "SELECT 1")
    assert database.idle_connections[0] == 1


async def test_kept_connections_go_back_to_the_pool_after_the_recycle_time(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's pool replaces a connection after ``POOL_RECYCLE`` seconds; a kept one must
    come back to it by then, or it would never be replaced (SQLite keeps its own)."""
    monkeypatch.setattr(engine, "POOL_RECYCLE", 0)
    database = Database(await databases.create(), pool_size=4)
    try:
        for _ in range(3):
            async with database.write() as conn:
                await driver.fetch(conn, "SELECT 1")
            async with database.read() as conn:
                await driver.fetch(conn, "SELECT 1")
        expected = (1, 1) if database.is_sqlite else (0, 0)
        assert database.idle_connections == expected
    finally:
        await database.dispose()


async def test_a_connection_from_the_pool_gets_each_kind_s_mode_after_another(
    databases: DatabaseFactory,
) -> None:
    """With a pool of one nothing is kept: the one connection goes back and forth between
    the kinds, and each unit must still run in its own mode (autocommit reads included)."""
    database = Database(await databases.create(), pool_size=1)
    try:
        for _ in range(2):
            async with database.read(consistent=False) as conn:
                assert not await _statements_share_a_transaction(database, conn)
            async with database.write() as conn:
                assert await _statements_share_a_transaction(database, conn)
            async with database.read(consistent=False) as conn:
                assert not await _statements_share_a_transaction(database, conn)
            async with database.read() as conn:
                assert await _statements_share_a_transaction(database, conn)
        assert database.idle_connections == (0, 0)
    finally:
        await database.dispose()
