"""Channels full of messages written straight to storage, for the search index's tests."""

from __future__ import annotations

from sqlalchemy import insert, select

from courtyard.services.search import search_document
from courtyard.storage.engine import Database
from courtyard.storage.repositories.messages import MessageRepository, NewMessage
from courtyard.storage.repositories.search import SearchRepository
from courtyard.storage.schema import channels, messages, users
from courtyard.storage.timestamps import from_micros

NOW = 1_700_000_000_000_000


async def fill_channels(
    database: Database, texts: dict[str, list[str]], *, index: bool = True
) -> dict[str, int]:
    """A user, one public channel per key holding its lines (their search documents written
    too, unless not ``index``); returns the channels' ids by name, and the user's as "user"."""
    ids: dict[str, int] = {}
    async with database.write() as conn:
        user_id = (
            await conn.execute(
                insert(users)
                .values(
                    username="indexer",
                    display_name="Indexer",
                    role="member",
                    created_at=NOW,
                    updated_at=NOW,
                    credentials_changed_at=NOW,
                )
                .returning(users.c.id)
            )
        ).scalar_one()
        for name, lines in texts.items():
            channel_id = (
                await conn.execute(
                    insert(channels)
                    .values(kind="public", name=name, name_key=name, created_at=NOW)
                    .returning(channels.c.id)
                )
            ).scalar_one()
            ids[name] = channel_id
            await MessageRepository(conn).insert_many(
                [
                    NewMessage(channel_id, seq, user_id, line, None, None, False, False)
                    for seq, line in enumerate(lines, start=1)
                ],
                now=from_micros(NOW),
            )
        if index:
            rows = await conn.execute(select(messages.c.id, messages.c.text))
            await SearchRepository(conn).index([search_document(r.id, r.text) for r in rows])
    ids["user"] = user_id
    return ids
