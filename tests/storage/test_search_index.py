"""The search index's storage: migrations 0004 and 0005 on existing documents (both
directions), the PostgreSQL two-step newest-first search, phrases found through PostgreSQL's
index of adjacent word pairs (same results on SQLite), and the relevance ranking used on
SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text

from courtyard.domain.search_query import Phrase, parse_query
from courtyard.services.search import search_document
from courtyard.storage import migrate
from courtyard.storage.engine import Database
from courtyard.storage.repositories import search as search_repository
from courtyard.storage.repositories.search import SearchRepository, SearchSpec
from courtyard.storage.repositories.search_syntax import pair_terms, pairs_tsquery, rank_documents
from courtyard.storage.schema import messages, search_documents
from tests.storage.channels_seed import fill_channels
from tests.support import DatabaseFactory


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
        ids = await fill_channels(
            database, {"ops": ["deploy failed 数据安全"], "dev": ["deploy ok"]}
        )
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
        ids = await fill_channels(database, {"big": lines, "small": ["release small"]})
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


# --- phrases through the index of adjacent word pairs (PostgreSQL) ------------------------
PHRASE_LINES = [
    "please review the pull request today",  # 0: "pull request", "review the pull"
    "pull the request back",  # 1: both words, not adjacent
    "request pull",  # 2: reversed
    "two pull requests merged",  # 3: stems to "pull request"
    "review pull then a pull request",  # 4: both pairs of "review pull request", apart
    "review pull request now",  # 5: "review pull request"
    "pull requesting 数据 review",  # 6: stems to "pull request" too
    "python数据 pull",  # 7: a phrase across scripts, no pair
]


async def _pairs_of(database: Database) -> dict[int, str]:
    """PostgreSQL's ``search_pairs`` rows: message id -> the tsvector as text."""
    async with database.read() as conn:
        rows = await conn.execute(text("SELECT message_id, pairs::text FROM search_pairs"))
        return {int(row[0]): str(row[1]) for row in rows}


async def _pending_list_limits(database: Database) -> dict[str, list[str] | None]:
    """PostgreSQL: the storage options of the search GIN indexes, by name."""
    async with database.read() as conn:
        rows = await conn.execute(
            text(
                "SELECT relname, reloptions FROM pg_class WHERE relname IN"
                " ('ix_search_documents_body', 'ix_search_pairs_pairs')"
            )
        )
        return {str(row[0]): row[1] for row in rows}


@pytest.mark.parametrize(("reach", "walk_max"), [(0, 0), (1, 0), (2, 1000), (2_000, 20_000)])
async def test_phrases_match_adjacent_words_on_both_databases(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, reach: int, walk_max: int
) -> None:
    # PostgreSQL walks the newest documents, then asks the index of pairs for the rest; a
    # reach of 0 asks the index at once, 1 and 2 cross from walking to the index on every
    # page (SQLite ignores them).
    monkeypatch.setattr(search_repository, "_PAIRED_WALK_REACH", reach)
    monkeypatch.setattr(search_repository, "_PAIRED_WALK_PER_RESULT", 0)
    monkeypatch.setattr(search_repository, "_PAIRED_WALK_MAX", walk_max)
    database = Database(await databases.create())
    try:
        ids = await fill_channels(
            database, {"ops": PHRASE_LINES, "dev": ["pull request elsewhere"]}
        )
        user = ids["user"]
        m = await _message_ids(database, ids["ops"])
        dev = await _message_ids(database, ids["dev"])
        expected = {
            '"pull request"': [*dev, m[6], m[5], m[4], m[3], m[0]],
            '"review pull request"': [m[5]],
            '"the pull request"': [m[0]],
            '"pull req*"': [*dev, m[6], m[5], m[4], m[3], m[0]],
            '"python数据"': [m[7]],
            '"pull request" review': [m[6], m[5], m[4], m[0]],
        }
        for q, ids_newest_first in expected.items():
            assert await _find(database, q, user, limit=50) == ids_newest_first, q
            ranked = await _find(database, q, user, limit=50, order="relevance")
            assert sorted(ranked) == sorted(ids_newest_first), q
        # Pages by date continue below the cursor, and the window bounds relevance.
        assert await _find(database, '"pull request"', user, limit=2) == [dev[0], m[6]]
        assert await _find(database, '"pull request"', user, limit=2, before_id=m[6]) == [
            m[5],
            m[4],
        ]
        window = await _find(
            database, '"pull request"', user, order="relevance", limit=50, relevance_window=2
        )
        assert sorted(window) == sorted([dev[0], m[6]])
        # A channel filter, and nothing from a channel the searcher cannot read.
        assert await _find(database, '"pull request"', user, channel_ids=[ids["dev"]]) == dev
        async with database.read() as conn:
            hidden = await SearchRepository(conn).search(
                SearchSpec(
                    user_id=user,
                    include_public=False,
                    include=parse_query('"pull request"').include,
                )
            )
        assert hidden == []
    finally:
        await database.dispose()


async def test_phrase_candidates_that_do_not_match_are_read_past(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Newer documents hold both pairs of "review pull request" but not the phrase: PostgreSQL
    # reads the candidates of the index of pairs a chunk at a time (2 for one result here,
    # then 8) until enough of them match.
    monkeypatch.setattr(search_repository, "_PAIRED_WALK_REACH", 0)
    monkeypatch.setattr(search_repository, "_PAIRED_WALK_PER_RESULT", 0)
    monkeypatch.setattr(search_repository, "_PAIRED_CHUNK_EXTRA", 0)
    database = Database(await databases.create())
    try:
        lines = ["review pull request one", *["review pull then pull request"] * 5, "deploy"]
        ids = await fill_channels(database, {"ops": lines})
        m = await _message_ids(database, ids["ops"])
        user = ids["user"]
        assert await _find(database, '"review pull request"', user, limit=1) == [m[0]]
        ranked = await _find(database, '"review pull request"', user, order="relevance")
        assert ranked == [m[0]]
        assert await _find(database, '"pull request"', user, limit=3, before_id=m[3]) == [
            m[2],
            m[1],
            m[0],
        ]
    finally:
        await database.dispose()


async def test_edits_and_deletions_replace_the_pairs(databases: DatabaseFactory) -> None:
    database = Database(await databases.create())
    try:
        ids = await fill_channels(database, {"ops": ["merge the pull request", "pull request two"]})
        user = ids["user"]
        first, second = await _message_ids(database, ids["ops"])
        async with database.write() as conn:
            await SearchRepository(conn).replace(search_document(first, "pull the request"))
        assert await _find(database, '"pull request"', user) == [second]
        assert await _find(database, '"the request"', user) == [first]
        async with database.write() as conn:
            await SearchRepository(conn).remove(second)
        assert await _find(database, '"pull request"', user) == []
        if database.is_sqlite:
            return
        # The pairs follow their document: replaced with it, and gone with it.
        assert await _pairs_of(database) == {first: "'pull¶the' 'the¶request'"}
        async with database.write() as conn:
            await SearchRepository(conn).clear()
        assert await _pairs_of(database) == {}
    finally:
        await database.dispose()


async def test_migration_0005_pairs_existing_documents_both_ways(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create()
    database = Database(url)
    try:
        lines = [*PHRASE_LINES, "数据安全 only", "deploy", "Déjà vu 12 34 déjà vu"]
        ids = await fill_channels(database, {"ops": lines})
        user = ids["user"]
        written = {} if database.is_sqlite else await _pairs_of(database)
        await database.dispose()
        await asyncio.to_thread(command.downgrade, migrate._config(url), "0004")
        database = Database(url)
        if not database.is_sqlite:
            async with database.read() as conn:
                left = await conn.execute(text("SELECT to_regclass('search_pairs') IS NULL"))
                assert left.scalar_one() is True
            assert await _pending_list_limits(database) == {"ix_search_documents_body": None}
        await database.dispose()
        await migrate.upgrade_async(url)
        database = Database(url)
        if not database.is_sqlite:
            # Pairs made from the stored positions are the pairs the index writes.
            assert len(written) == 8
            assert await _pairs_of(database) == written
            assert await _pending_list_limits(database) == {
                "ix_search_documents_body": ["gin_pending_list_limit=256"],
                "ix_search_pairs_pairs": ["gin_pending_list_limit=256"],
            }
        m = await _message_ids(database, ids["ops"])
        assert await _find(database, '"review pull request"', user) == [m[5]]
        assert await _find(database, '"deja vu 12"', user) == [m[10]]
    finally:
        await database.dispose()


def test_pair_terms_are_adjacent_ascii_terms_and_a_query_needs_all_of_them() -> None:
    assert pair_terms(["pull", "request", "pull", "request", "数据", "据x", "x", "9"]) == [
        "pull\u00b6request",
        "request\u00b6pull",
        "x\u00b69",
    ]
    assert pair_terms(["deploy"]) == [] and pair_terms([]) == []
    include = parse_query('"review pull request" "pull req*" deploy 数据安全').include
    assert pairs_tsquery(include) == (
        "'review\u00b6pull' & 'pull\u00b6request' & 'pull\u00b6req':*"
    )
    assert pairs_tsquery(parse_query('deploy 数据安全 -"pull request"').include) is None
