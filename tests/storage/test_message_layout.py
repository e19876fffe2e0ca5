"""How messages are stored: on SQLite by (channel_id, seq) without a rowid (migration 0006),
with ids numbered by the repository and never reused. Upgrading and downgrading keep every row
and every row that hangs off a message (foreign keys are off while migrating, or the drop would
cascade)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from courtyard.domain.messages import PageRequest
from courtyard.storage import migrate
from courtyard.storage.engine import Database
from courtyard.storage.errors import UniqueViolation
from courtyard.storage.repositories import messages as message_repository
from courtyard.storage.repositories.messages import MessageRepository, NewMessage
from courtyard.storage.schema import channels, mentions, messages, reactions, users
from tests.support import DatabaseFactory

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STAMP = 1_700_000_000_000_000


async def _channels_and_user(database: Database) -> tuple[int, int, int]:
    async with database.write() as conn:
        user_id = (
            await conn.execute(
                insert(users)
                .values(
                    username="layout",
                    display_name="Layout",
                    role="member",
                    created_at=STAMP,
                    updated_at=STAMP,
                    credentials_changed_at=STAMP,
                )
                .returning(users.c.id)
            )
        ).scalar_one()
        ids = []
        for name in ("north", "south"):
            ids.append(
                (
                    await conn.execute(
                        insert(channels)
                        .values(kind="public", name=name, name_key=name, created_at=STAMP)
                        .returning(channels.c.id)
                    )
                ).scalar_one()
            )
    return ids[0], ids[1], user_id


def _message(channel_id: int, seq: int, user_id: int, client_id: str | None = None) -> NewMessage:
    return NewMessage(channel_id, seq, user_id, f"line {seq}", None, client_id, False, False)


async def _store_interleaved(database: Database, north: int, south: int, user: int) -> list[int]:
    """Six messages, alternating channels, one at a time and then as a batch."""
    async with database.write() as conn:
        repo = MessageRepository(conn)
        ids = [await repo.insert(_message(north, 1, user), now=NOW)]
        ids.append(await repo.insert(_message(south, 1, user), now=NOW))
        ids += await repo.insert_many(
            [
                _message(north, 2, user, "n2"),
                _message(south, 2, user, "s2"),
                _message(north, 3, user, "n3"),
                _message(south, 3, user),
            ],
            now=NOW,
        )
    return ids


async def test_ids_follow_arrival_and_pages_follow_the_channel(databases: DatabaseFactory) -> None:
    database = Database(await databases.create())
    try:
        north, south, user = await _channels_and_user(database)
        ids = await _store_interleaved(database, north, south, user)
        # Ids rise in the order messages arrived, across channels, on both databases.
        assert ids == sorted(ids)
        assert len(set(ids)) == 6
        async with database.read() as conn:
            rows = (
                await conn.execute(select(messages.c.id, messages.c.channel_id, messages.c.seq))
            ).all()
            by_id = {row.id: (row.channel_id, row.seq) for row in rows}
            assert [by_id[i] for i in ids] == [
                (north, 1),
                (south, 1),
                (north, 2),
                (south, 2),
                (north, 3),
                (south, 3),
            ]
            if database.is_sqlite:
                table_sql = (
                    await conn.execute(
                        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"),
                        {"n": "messages"},
                    )
                ).scalar_one()
                assert "WITHOUT ROWID" in table_sql
                assert "PRIMARY KEY (channel_id, seq)" in table_sql
                # Stored order is the channel's order, whatever the arrival order was.
                stored = (await conn.execute(text("SELECT channel_id, seq FROM messages"))).all()
                assert [tuple(row) for row in stored] == sorted(tuple(row) for row in stored)
    finally:
        await database.dispose()


async def test_an_id_is_never_given_out_twice(databases: DatabaseFactory) -> None:
    database = Database(await databases.create())
    try:
        north, south, user = await _channels_and_user(database)
        first = await _store_interleaved(database, north, south, user)
        async with database.write() as conn:
            # Deleting the newest messages does not free their ids (SQLite's rowids did).
            await conn.execute(messages.delete().where(messages.c.id.in_(first[-2:])))
            later = await MessageRepository(conn).insert(_message(north, 4, user), now=NOW)
            batch = await MessageRepository(conn).insert_many(
                [_message(south, 4, user), _message(north, 5, user)], now=NOW
            )
        assert later == max(first) + 1
        assert batch == [later + 1, later + 2]
    finally:
        await database.dispose()


async def test_a_channel_page_skips_a_long_thread_through_the_top_level_index(
    databases: DatabaseFactory,
) -> None:
    database = Database(await databases.create())
    try:
        north, _, user = await _channels_and_user(database)
        async with database.write() as conn:
            repo = MessageRepository(conn)
            tops = await repo.insert_many(
                [_message(north, seq, user) for seq in (1, 2, 3)], now=NOW
            )
            # The newest 300 messages of the channel are replies in one thread.
            await repo.insert_many(
                [
                    NewMessage(north, seq, user, f"reply {seq}", tops[0], None, False, False)
                    for seq in range(4, 304)
                ],
                now=NOW,
            )
        async with database.read() as conn:
            repo = MessageRepository(conn)
            _, latest = await repo.channel_page(north, user, PageRequest(limit=2))
            _, older = await repo.channel_page(north, user, PageRequest(limit=2, before=300))
            _, newer = await repo.channel_page(north, user, PageRequest(limit=2, after=1))
            assert [m.id for m in latest.messages] == tops[1:]
            assert latest.has_more_before and not latest.has_more_after
            assert [m.id for m in older.messages] == tops[1:]
            assert [m.id for m in newer.messages] == tops[1:]
            assert not newer.has_more_after
            if database.is_sqlite:
                # Every messages read of a channel page goes through the partial index of
                # top-level messages, not along the (channel_id, seq) key past every reply.
                pages = message_repository._CHANNEL_PAGE
                for statement in (pages.latest_page, pages.before_page, pages.after_page):
                    sql, values = statement.render(
                        conn.dialect, {"scope_id": north, "seq": 300, "n": 3, "viewer_id": user}
                    )
                    plan = [
                        str(row[3])
                        for row in (
                            await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(values))
                        )
                    ]
                    reads = [step for step in plan if " messages " in f"{step} "]
                    assert reads, plan
                    assert all("ix_messages_channel_top_level" in step for step in reads), plan
    finally:
        await database.dispose()


async def _counts(database: Database) -> tuple[int, int, int, list[tuple[int, int, int]]]:
    async with database.read() as conn:
        reaction_count = (await conn.execute(select(func.count()).select_from(reactions))).scalar()
        mention_count = (await conn.execute(select(func.count()).select_from(mentions))).scalar()
        message_count = (await conn.execute(select(func.count()).select_from(messages))).scalar()
        rows = (
            await conn.execute(
                select(messages.c.id, messages.c.channel_id, messages.c.seq).order_by(messages.c.id)
            )
        ).all()
    return (
        int(reaction_count or 0),
        int(mention_count or 0),
        int(message_count or 0),
        [tuple(row) for row in rows],
    )


async def test_upgrade_and_downgrade_keep_messages_and_what_hangs_off_them(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create()
    await asyncio.to_thread(command.downgrade, migrate._config(url), "0005")
    database = Database(url)
    try:
        north, south, user = await _channels_and_user(database)
        ids = []
        async with database.write() as conn:
            # Stored as revision 0005 stored them: the database numbers the rows.
            for seq in (1, 2, 3):
                for channel_id in (north, south):
                    ids.append(
                        (
                            await conn.execute(
                                insert(messages)
                                .values(
                                    channel_id=channel_id,
                                    seq=seq,
                                    sender_id=user,
                                    text=f"line {seq}",
                                    created_at=STAMP,
                                    version=1,
                                    reply_count=0,
                                    reply_participant_ids="[]",
                                    mentions_channel=False,
                                    mentions_here=False,
                                )
                                .returning(messages.c.id)
                            )
                        ).scalar_one()
                    )
            await conn.execute(
                insert(reactions),
                [
                    {"message_id": i, "emoji": "+1", "user_id": user, "created_at": STAMP}
                    for i in ids
                ],
            )
            await conn.execute(
                insert(mentions),
                [{"message_id": ids[0], "user_id": user, "channel_id": north, "seq": 1}],
            )
        before = await _counts(database)
        assert before[:3] == (6, 1, 6)
        await database.dispose()

        await migrate.upgrade_async(url)
        database = Database(url)
        assert await _counts(database) == before
        async with database.write() as conn:
            new_id = await MessageRepository(conn).insert(_message(south, 4, user), now=NOW)
        assert new_id == max(ids) + 1
        # The rebuilt table still has its keys: a reaction needs a message, a seq is taken once.
        with pytest.raises(IntegrityError):
            async with database.write() as conn:
                await conn.execute(
                    insert(reactions).values(
                        message_id=new_id + 100, emoji="x", user_id=user, created_at=STAMP
                    )
                )
        with pytest.raises(UniqueViolation):
            async with database.write() as conn:
                await MessageRepository(conn).insert(_message(south, 4, user), now=NOW)
        await database.dispose()

        await asyncio.to_thread(command.downgrade, migrate._config(url), "0005")
        database = Database(url)
        after = await _counts(database)
        assert after[:3] == (6, 1, 7)
        assert after[3] == [*before[3], (new_id, south, 4)]
    finally:
        await database.dispose()
