"""A read unit of work sees one snapshot for all its statements, on both databases."""

from __future__ import annotations

from sqlalchemy import text

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
