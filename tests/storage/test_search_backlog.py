"""New messages' search documents, written after their transactions (storage/search_backlog.py,
ADR 0024): written soon and in batches, never for a message deleted meanwhile nor over an
edit's document, retried after a failure, bounded, finished at shutdown, and recovered at
start-up when a process stopped with documents still queued."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text, update

from courtyard.domain.search_query import parse_query
from courtyard.services.search import search_document
from courtyard.storage.engine import Database
from courtyard.storage.repositories.search import SearchRepository, SearchSpec
from courtyard.storage.schema import messages, search_documents
from courtyard.storage.search_backlog import SearchBacklog
from tests.storage.channels_seed import NOW, fill_channels
from tests.support import DatabaseFactory, Org


async def _messages(database: Database, lines: list[str]) -> tuple[int, list[int]]:
    """A user and a public channel holding ``lines``, with no search documents; returns the
    user's id and the messages' ids."""
    ids = await fill_channels(database, {"queue": lines}, index=False)
    async with database.read() as conn:
        rows = await conn.execute(select(messages.c.id).order_by(messages.c.id))
        return ids["user"], [int(row.id) for row in rows]


async def _documents(database: Database) -> dict[int, str]:
    async with database.read() as conn:
        rows = await conn.execute(select(search_documents.c.message_id, search_documents.c.body))
        return {int(row.message_id): str(row.body) for row in rows}


async def _find(database: Database, q: str, user_id: int) -> list[int]:
    async with database.read() as conn:
        hits = await SearchRepository(conn).search(
            SearchSpec(user_id=user_id, include_public=True, include=parse_query(q).include)
        )
    return [hit.message_id for hit in hits]


async def test_documents_are_written_together_soon_after_they_are_queued(
    databases: DatabaseFactory,
) -> None:
    database = Database(await databases.create())
    try:
        user_id, ids = await _messages(database, [f"rollout step {n}" for n in range(300)])
        backlog = SearchBacklog(database, interval=0.05, chunk=128)
        backlog.index_later(
            [search_document(mid, f"rollout step {n}") for n, mid in enumerate(ids)]
        )
        assert backlog.pending == 300 and await _documents(database) == {}
        await asyncio.sleep(0.5)  # the interval passes; nobody asked
        assert backlog.pending == 0 and backlog.written == 300 and backlog.failures == 0
        assert sorted(await _documents(database)) == ids
        assert await _find(database, "rollout", user_id) == sorted(ids, reverse=True)[:20]
    finally:
        await database.dispose()


async def test_caught_up_waits_for_what_was_queued_before_it_and_no_longer(
    databases: DatabaseFactory,
) -> None:
    database = Database(await databases.create())
    try:
        user_id, ids = await _messages(database, ["first deploy", "second deploy"])
        # An interval far longer than the test: only a searcher's wait makes it write.
        backlog = SearchBacklog(database, interval=60)
        await backlog.caught_up()  # nothing queued: returns at once
        backlog.index_later([search_document(ids[0], "first deploy")])
        await asyncio.wait_for(backlog.caught_up(), 5)
        assert await _find(database, "deploy", user_id) == [ids[0]]
        backlog.index_later([search_document(ids[1], "second deploy")])
        await asyncio.wait_for(backlog.caught_up(), 5)
        assert await _find(database, "deploy", user_id) == [ids[1], ids[0]]
    finally:
        await database.dispose()


async def test_a_message_deleted_or_edited_before_its_document_is_written_stays_so(
    databases: DatabaseFactory,
) -> None:
    database = Database(await databases.create())
    try:
        user_id, ids = await _messages(database, ["kept word", "deleted word", "typo word"])
        kept, deleted, edited = ids
        backlog = SearchBacklog(database, interval=60)
        backlog.index_later(
            [
                search_document(mid, line)
                for mid, line in zip(ids, ["kept word", "deleted word", "typo word"], strict=True)
            ]
        )
        # Meanwhile one is deleted and one edited, each in a transaction of its own.
        async with database.write() as conn:
            await conn.execute(
                update(messages).where(messages.c.id == deleted).values(deleted_at=NOW)
            )
        async with database.write() as conn:
            await conn.execute(
                update(messages).where(messages.c.id == edited).values(text="fixed word")
            )
            await SearchRepository(conn).replace(search_document(edited, "fixed word"))
        await asyncio.wait_for(backlog.caught_up(), 5)
        assert sorted(await _documents(database)) == [kept, edited]
        assert await _find(database, "word", user_id) == [edited, kept]
        assert await _find(database, "fixed", user_id) == [edited]
        assert await _find(database, "typo", user_id) == []
        # And an edit replaces a document already written.
        async with database.write() as conn:
            await SearchRepository(conn).replace(search_document(kept, "renamed word"))
        assert await _find(database, "kept", user_id) == []
        assert await _find(database, "renamed", user_id) == [kept]
    finally:
        await database.dispose()


async def test_a_failed_write_is_retried_and_waiting_searchers_go_on(
    databases: DatabaseFactory,
) -> None:
    database = Database(await databases.create())
    failing = {
        "sqlite": [
            "CREATE TRIGGER refuse_documents BEFORE INSERT ON search_documents "
            "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
        ],
        "postgresql": [
            "CREATE FUNCTION refuse_documents() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$",
            "CREATE TRIGGER refuse_documents BEFORE INSERT ON search_documents "
            "FOR EACH ROW EXECUTE FUNCTION refuse_documents()",
        ],
    }[database.dialect]
    try:
        user_id, ids = await _messages(database, ["retried entry"])
        async with database.write() as conn:
            for statement in failing:
                await conn.execute(text(statement))
        backlog = SearchBacklog(database, interval=0.01, retry_after=0.2)
        backlog.index_later([search_document(ids[0], "retried entry")])
        # The searcher is not held up by a database that refuses: it goes on without.
        await asyncio.wait_for(backlog.caught_up(), 5)
        assert backlog.failures >= 1 and backlog.pending == 1
        assert await _find(database, "retried", user_id) == []
        async with database.write() as conn:
            await conn.execute(
                text("DROP TRIGGER refuse_documents ON search_documents")
                if database.dialect == "postgresql"
                else text("DROP TRIGGER refuse_documents")
            )
        for _ in range(100):  # retried after retry_after, with nobody waiting
            if backlog.written:  # (pending is 0 already while the retry is being written)
                break
            await asyncio.sleep(0.05)
        assert backlog.pending == 0 and backlog.written == 1
        assert await _find(database, "retried", user_id) == ids
    finally:
        await database.dispose()


async def test_a_full_backlog_says_so_until_it_has_caught_up(databases: DatabaseFactory) -> None:
    database = Database(await databases.create())
    try:
        _, ids = await _messages(database, [f"line {n}" for n in range(5)])
        backlog = SearchBacklog(database, interval=60, max_pending=4)
        backlog.index_later([search_document(mid, "line") for mid in ids[:3]])
        assert not backlog.full
        backlog.index_later([search_document(mid, "line") for mid in ids[3:]])
        assert backlog.full  # the group commit now waits for caught_up() before a batch
        await asyncio.wait_for(backlog.caught_up(), 5)
        assert not backlog.full and backlog.written == 5
    finally:
        await database.dispose()


async def test_senders_held_by_a_full_backlog_go_on_once_half_of_it_is_written(
    databases: DatabaseFactory,
) -> None:
    database = Database(await databases.create())
    try:
        _, ids = await _messages(database, [f"line {n}" for n in range(6)])
        backlog = SearchBacklog(database, interval=60, chunk=2, max_pending=4)
        backlog.index_later([search_document(mid, "line") for mid in ids])
        assert backlog.full
        async with asyncio.timeout(5):  # not the 60 s interval: it hurries the writer
            await backlog.room()  # (awaited in this task, so it resumes before the writer)
        assert backlog.written == 4 and backlog.pending == 2 and not backlog.full
        await asyncio.wait_for(backlog.caught_up(), 5)
        assert backlog.written == 6 and sorted(await _documents(database)) == ids
    finally:
        await database.dispose()


async def test_closing_the_database_writes_what_is_still_queued(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create()
    database = Database(url)
    _, ids = await _messages(database, ["owed at shutdown"])
    backlog = SearchBacklog(database, interval=60)
    database.before_dispose.append(backlog.close)
    backlog.index_later([search_document(ids[0], "owed at shutdown")])
    await database.dispose()
    database = Database(url)
    try:
        assert sorted(await _documents(database)) == ids
    finally:
        await database.dispose()


async def test_documents_a_stopped_process_owed_are_written_at_start_up(fresh_org: Org) -> None:
    person = await fresh_org.person("recovered")
    channel = await person.create_channel()
    sent = [await person.send(channel["id"], f"unindexed note {n}") for n in range(3)]
    ids = [message["id"] for message in sent]
    storage = fresh_org.server.services.context.storage
    await storage.search_backlog.caught_up()
    # As if the process had stopped before writing the last two documents.
    async with storage.database.write() as conn:
        await conn.execute(
            search_documents.delete().where(search_documents.c.message_id.in_(ids[1:]))
        )
    query = {"q": "unindexed"}
    found = (await person.get("/api/v1/search", params=query)).json()["results"]
    assert [r["message"]["id"] for r in found] == ids[:1]
    assert await fresh_org.server.services.search.index_missing() == 2
    assert await fresh_org.server.services.search.index_missing() == 0
    found = (await person.get("/api/v1/search", params=query)).json()["results"]
    assert [r["message"]["id"] for r in found] == ids[::-1]


async def test_sends_leave_their_documents_to_the_backlog_on_postgresql_only(
    org: Org, db_backend: str
) -> None:
    # On SQLite the send's own transaction writes the document (ADR 0024: separate
    # transactions cost the one writer more than they saved); PostgreSQL's come after.
    person = await org.person("sender")
    channel = await person.create_channel()
    backlog = org.server.services.context.storage.search_backlog
    before = backlog.written
    sent = await person.send(channel["id"], "handed over afterwards")
    found = (await person.get("/api/v1/search", params={"q": "afterwards"})).json()["results"]
    assert [r["message"]["id"] for r in found] == [sent["id"]]  # the sender's search sees it
    assert backlog.written - before == (0 if db_backend == "sqlite" else 1)


async def test_indexing_looks_messages_up_by_key_however_much_the_table_has_grown(
    databases: DatabaseFactory,
) -> None:
    """A young database's messages table grows from nothing faster than its statistics
    follow. On PostgreSQL a prepared statement's generic plan, made while the table was tiny,
    scanned all of it for each document once it was large: in the benchmark a batch of 1,000
    documents took seconds, the backlog filled, and sends stopped. Every batch is now planned
    for the table as it is, so documents are found by key."""
    database = Database(await databases.create())
    try:
        _, ids = await _messages(database, [f"early {n}" for n in range(8)])
        async with database.write() as conn:
            if database.is_sqlite:
                # One lookup by key per document; no statistics to go stale.
                plan = await conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE id = ? "
                    "AND deleted_at IS NULL",
                    (ids[0],),
                )
                details = " ".join(str(row[-1]) for row in plan)
                assert "SCAN" not in details and "SEARCH messages" in details
                return
            # Nothing may analyze the table meanwhile: that would replace the stale plan.
            await conn.execute(text("ALTER TABLE messages SET (autovacuum_enabled = false)"))
            index = SearchRepository(conn)
            for mid in ids:  # the plan cache settles on a generic plan for the tiny table
                await index.index([search_document(mid, "early")])
            channel_id = (
                await conn.execute(select(messages.c.channel_id).where(messages.c.id == ids[0]))
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO messages (channel_id, seq, sender_id, text, created_at, version,"
                    " reply_count, reply_participant_ids, mentions_channel, mentions_here) "
                    "SELECT channel_id, seq + n, sender_id, 'later', created_at, 1, 0, '', "
                    "false, false FROM messages, generate_series(100, 30099) AS n "
                    "WHERE id = :first"
                ),
                {"first": ids[0]},
            )
            later = [
                int(row[0])
                for row in await conn.execute(
                    text("SELECT id FROM messages WHERE text = 'later' ORDER BY id LIMIT 100")
                )
            ]
            scans = text(
                "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'messages'"
            )
            seq_before, idx_before = (await conn.execute(scans)).one()
            for start in range(0, 100, 20):
                await index.index(
                    [search_document(mid, "later") for mid in later[start : start + 20]]
                )
            seq_after, idx_after = (await conn.execute(scans)).one()
            assert seq_after == seq_before  # not one pass over the 30,008 rows
            assert idx_after - idx_before >= 5
            assert channel_id is not None
        assert len([m for m in await _documents(database) if m in set(later)]) == 100
    finally:
        await database.dispose()
