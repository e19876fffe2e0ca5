"""The search index's storage: migration 0004 on existing documents (both directions), the
PostgreSQL two-step newest-first search, and the relevance ranking used on SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select

from courtyard.domain.search_query import Phrase, parse_query
from courtyard.services.search import search_document
from courtyard.storage import migrate
from courtyard.storage.engine import Database
from courtyard.storage.repositories import search as search_repository
from courtyard.storage.repositories.search import SearchRepository, SearchSpec, rank_documents
from courtyard.storage.schema import channels, messages, search_documents, users
from tests.support import DatabaseFactory

NOW = 1_700_000_000_000_000


async def _fill(database: Database, texts: dict[str, list[str]]) -> dict[str, int]:
    """A user, one public channel per key, its messages indexed; returns channel ids."""
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
            for seq, line in enumerate(lines, start=1):
                await conn.execute(
                    insert(messages).values(
                        channel_id=channel_id,
                        seq=seq,
                        sender_id=user_id,
                        text=line,
                        created_at=NOW + seq,
                        version=1,
                        reply_count=0,
                        reply_participant_ids="[]",
                        mentions_channel=False,
                        mentions_here=False,
                    )
                )
        rows = await conn.execute(select(messages.c.id, messages.c.text))
        await SearchRepository(conn).index([search_document(r.id, r.text) for r in rows])
    ids["user"] = user_id
    return ids


async def _find(database: Database, q: str, user_id: int, **spec: Any) -> list[int]:
    query = parse_query(q)
    async with database.read() as conn:
        hits = await SearchRepository(conn).search(
            SearchSpec(user_id=user_id, include_public=True, include=query.include, **spec)
        )
    return [hit.message_id for hit in hits]


async def _message_ids(database: Database, channel_id: int) -> list[int]:
    async with database.read() as conn:
        rows = await conn.execute(
            select(messages.c.id).where(messages.c.channel_id == channel_id).order_by(messages.c.id)
        )
        return [int(row.id) for row in rows]


async def test_migration_0004_fills_existing_documents_both_ways(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create()
    database = Database(url)
    try:
        ids = await _fill(database, {"ops": ["deploy failed 数据安全"], "dev": ["deploy ok"]})
        ops = await _message_ids(database, ids["ops"])
        dev = await _message_ids(database, ids["dev"])
        await database.dispose()
        await asyncio.to_thread(command.downgrade, migrate._config(url), "0003")
        database = Database(url)
        async with database.read() as conn:
            bodies = [str(row.body) for row in await conn.execute(select(search_documents.c.body))]
        assert bodies and not any("\u00a7" in body for body in bodies)
        await database.dispose()
        await migrate.upgrade_async(url)
        database = Database(url)
        async with database.read() as conn:
            rows = await conn.execute(
                select(search_documents.c.message_id, search_documents.c.channel_id)
            )
            channel_of = {int(r.message_id): r.channel_id for r in rows}
        assert channel_of == {ops[0]: ids["ops"], dev[0]: ids["dev"]}
        user = ids["user"]
        assert await _find(database, "deploy", user) == sorted(ops + dev, reverse=True)
        assert await _find(database, "deploy", user, channel_ids=[ids["ops"]]) == ops
        assert await _find(database, "安全", user, channel_ids=[ids["dev"]]) == []
        assert await _find(database, "deploy", user, channel_ids=[ids["dev"]], order="relevance")
    finally:
        await database.dispose()


@pytest.mark.parametrize("walk_max", [0, 6, 1000])
async def test_newest_first_across_the_walk_and_the_index(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, walk_max: int
) -> None:
    # PostgreSQL walks the newest ids, walks on as far as the share found predicts (up to
    # _WALK_MAX ids), and asks the index for the rest; a first reach of 3 ids makes every
    # page cross those boundaries (SQLite ignores them: one query serves both).
    monkeypatch.setattr(search_repository, "_WALK_REACH", 3)
    monkeypatch.setattr(search_repository, "_WALK_PER_RESULT", 1)
    monkeypatch.setattr(search_repository, "_WALK_MAX", walk_max)
    database = Database(await databases.create())
    try:
        lines = [f"release {n} notes" if n % 4 == 0 else f"other {n}" for n in range(40)]
        ids = await _fill(database, {"big": lines, "small": ["release small"]})
        user = ids["user"]
        every = [
            mid
            for mid, line in zip(await _message_ids(database, ids["big"]), lines, strict=True)
            if line.startswith("release")
        ]
        small = await _message_ids(database, ids["small"])
        expected = sorted(every + small, reverse=True)
        assert await _find(database, "release", user, limit=100) == expected
        assert await _find(database, "release", user, limit=4) == expected[:4]
        below = expected[3]
        assert await _find(database, "release", user, limit=4, before_id=below) == expected[4:8]
        ranked = await _find(database, "release", user, order="relevance", limit=100)
        assert sorted(ranked) == sorted(expected)
        window = await _find(
            database, "release", user, order="relevance", limit=100, relevance_window=5
        )
        assert sorted(window, reverse=True) == expected[:5]
    finally:
        await database.dispose()


def test_ranking_counts_whole_terms_phrases_and_prefixes() -> None:
    deploy = Phrase(("deploy",))
    # Repeated neighbours all count; a longer term is not the term; ties go newest first.
    assert (
        rank_documents(
            [(1, "deploy deploy x \u00a74"), (2, "deploys deploy x \u00a74"), (3, "deploy x y")],
            [deploy],
        )[0][0]
        == 1
    )
    tie = rank_documents([(5, "deploy a \u00a71"), (9, "deploy a \u00a72")], [deploy])
    assert [mid for mid, _ in tie] == [9, 5]
    # Shorter documents rank higher for the same count; the scope term is not a word.
    short_first = rank_documents([(1, "deploy a b c d e f g h \u00a71"), (2, "deploy a")], [deploy])
    assert short_first[0][0] == 2
    phrase = Phrase(("pull", "request"))
    scored = dict(
        rank_documents(
            [(1, "pull request pull request"), (2, "request pull x"), (3, "pull requests")],
            [phrase],
        )
    )
    assert scored[1] > scored[2] == scored[3] == 0.0
    prefix = Phrase(("websock",), prefix=True)
    scored = dict(rank_documents([(1, "websocket websockets"), (2, "awebsock b")], [prefix]))
    assert scored[1] > scored[2] == 0.0
    assert rank_documents([], [deploy]) == []
