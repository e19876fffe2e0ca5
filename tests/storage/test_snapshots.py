"""A read unit of work sees one snapshot for all its statements, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from courtyard.storage.engine import Database
from tests.support import DatabaseFactory


async def test_a_read_sees_one_snapshot_while_others_commit(databases: DatabaseFactory) -> None:
    database = Database(await databases.create())
    try:
        async with database.write() as conn:
            await conn.execute(text("CREATE TABLE snapshot_probe (n INTEGER NOT NULL)"))
            await conn.execute(text("INSERT INTO snapshot_probe (n) VALUES (1)"))
        count = text("SELECT count(*) FROM snapshot_probe")
        async with database.read() as reader:
            before = (await reader.execute(count)).scalar_one()
            async with database.write() as writer:
                await writer.execute(text("INSERT INTO snapshot_probe (n) VALUES (2)"))
            # The other transaction has committed; this one still reads its own snapshot
            # (READ COMMITTED on PostgreSQL would see 2 here).
            during = (await reader.execute(count)).scalar_one()
        async with database.read() as later:
            after = (await later.execute(count)).scalar_one()
        assert (before, during, after) == (1, 1, 2)
    finally:
        await database.dispose()


async def test_units_of_work_get_their_isolation_on_every_checkout(
    databases: DatabaseFactory,
) -> None:
    # The options are set once on engine copies that share one pool (engine.py): a read after
    # a write on the same pooled connection must still be read-only (PostgreSQL), and a write
    # after a read must still take the write lock at BEGIN (SQLite: BEGIN IMMEDIATE).
    database = Database(await databases.create(), pool_size=1)
    try:
        for _ in range(2):
            async with database.write() as conn:
                if database.is_sqlite:
                    # Only an IMMEDIATE transaction holds the write lock before writing.
                    other = Database(str(database.url).replace("+aiosqlite", ""), pool_size=1)
                    try:
                        with pytest.raises(OperationalError, match="locked"):
                            await _begin_immediately(other)
                    finally:
                        await other.dispose()
                else:
                    modes = await conn.exec_driver_sql(
                        "SELECT current_setting('transaction_read_only'), "
                        "current_setting('transaction_isolation')"
                    )
                    assert tuple(modes.one()) == ("off", "read committed")
            async with database.read() as conn:
                if database.is_sqlite:
                    await conn.exec_driver_sql("SELECT 1")
                    assert conn.sync_connection is not None
                    assert conn.sync_connection.connection.driver_connection.raw.in_transaction
                else:
                    modes = await conn.exec_driver_sql(
                        "SELECT current_setting('transaction_read_only'), "
                        "current_setting('transaction_isolation')"
                    )
                    assert tuple(modes.one()) == ("on", "repeatable read")
    finally:
        await database.dispose()


async def _begin_immediately(database: Database) -> None:
    """Take SQLite's write lock at once, without waiting for it."""
    async with database.engine.connect() as probe:
        await probe.exec_driver_sql("PRAGMA busy_timeout=0")
        await probe.exec_driver_sql("BEGIN IMMEDIATE")
