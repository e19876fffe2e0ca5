"""storage/upkeep.py on both databases: each step reports its progress while it runs, and the
messages read the same afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from courtyard.domain.messages import PageRequest
from courtyard.storage import upkeep
from courtyard.storage.engine import Database
from courtyard.storage.repositories.messages import MessageRepository, NewMessage
from courtyard.storage.repositories.search import SearchDocument, SearchRepository
from tests.storage.test_message_layout import NOW, _channels_and_user
from tests.support import DatabaseFactory

Report = tuple[str, int | None, int | None]

# Enough rows that PostgreSQL's CLUSTER outlasts several progress polls.
PG_ROWS = 60_000
_PG_FILL = """
INSERT INTO messages (channel_id, seq, sender_id, text, created_at, version, reply_count,
                      reply_participant_ids, mentions_channel, mentions_here)
SELECT CASE WHEN g % 2 = 0 THEN $1::bigint ELSE $2::bigint END, g / 2 + 1, $3::bigint,
       'line ' || g, g, 1, 0, '[]', false, false
FROM generate_series(0, $4::bigint - 1) AS g
"""


async def _pages(database: Database, channel_ids: tuple[int, int]) -> list[list[int]]:
    async with database.read() as conn:
        repository = MessageRepository(conn)
        return [
            [message.id for message in (await repository.page(c, PageRequest(limit=50))).messages]
            for c in channel_ids
        ]


async def _fill_postgresql(database: Database, north: int, south: int, user: int) -> None:
    async with database.write() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute(_PG_FILL, north, south, user, PG_ROWS)


async def _fill_sqlite(database: Database, north: int, south: int, user: int) -> None:
    # One write transaction per batch, as group commits write them: one index segment each.
    for batch in range(40):
        async with database.write() as conn:
            ids = await MessageRepository(conn).insert_many(
                [
                    NewMessage(
                        channel,
                        batch * 5 + k + 1,
                        user,
                        f"upkeep {batch} {k} 维护",
                        None,
                        None,
                        False,
                        False,
                    )
                    for k in range(5)
                    for channel in (north, south)
                ],
                now=NOW,
            )
            await SearchRepository(conn).index(
                [SearchDocument(mid, ["upkeep", str(batch), "维护"], False) for mid in ids]
            )


async def test_optimize_reports_progress_and_keeps_every_page(
    databases: DatabaseFactory, db_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upkeep, "PROGRESS_INTERVAL_S", 0.005)
    monkeypatch.setattr(upkeep, "MERGE_PAGES", 1)  # SQLite: several merge rounds, each reported
    url = await databases.create()
    database = Database(url)
    try:
        north, south, user = await _channels_and_user(database)
        if db_backend == "sqlite":
            await _fill_sqlite(database, north, south, user)
        else:
            await _fill_postgresql(database, north, south, user)
        before = await _pages(database, (north, south))
        reports: list[Report] = []
        steps = await upkeep.optimize(
            database, progress=lambda step, done, total: reports.append((step, done, total))
        )
        assert await _pages(database, (north, south)) == before
        if db_backend == "sqlite":
            assert [step.name for step in steps] == [upkeep.MERGE_STEP]
            merged = [done for step, done, _ in reports if step == upkeep.MERGE_STEP]
            assert len(merged) >= 3 and merged == sorted(merged)
            with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
                assert upkeep.segments(db) == 1
        else:
            assert [step.name for step in steps] == [upkeep.CLUSTER_STEP, upkeep.ANALYZE_STEP]
            phases = [step for step, _, _ in reports if step.startswith(f"{upkeep.CLUSTER_STEP}: ")]
            assert phases, reports  # read from pg_stat_progress_cluster while CLUSTER ran
            counted = [(done, total) for _, done, total in reports if total]
            assert all(0 <= done <= total for done, total in counted)  # type: ignore[operator]
    finally:
        await database.dispose()


async def test_optimize_refuses_a_missing_sqlite_file_without_creating_one(
    databases: DatabaseFactory, db_backend: str
) -> None:
    url = await databases.create()
    database = Database(url)
    try:
        if db_backend == "sqlite":
            path = Path(url.removeprefix("sqlite:///"))
            await asyncio.to_thread(path.unlink)
            with pytest.raises(upkeep.UpkeepRefused, match="no database file"):
                await upkeep.optimize(database)
            assert not await asyncio.to_thread(path.exists)
        else:
            # PostgreSQL: a database without messages is optimized in no time, and says so.
            steps = await upkeep.optimize(database)
            assert [step.name for step in steps] == [upkeep.CLUSTER_STEP, upkeep.ANALYZE_STEP]
    finally:
        await database.dispose()
