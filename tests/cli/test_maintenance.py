"""`courtyard files sweep`, `search reindex` and `database optimize`, run as real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, select

from courtyard.storage.schema import audit_log, search_documents
from courtyard.storage.upkeep import segments
from tests.api.files_support import upload_ok
from tests.support import DatabaseFactory, Org, org_context

COURTYARD = Path(sys.executable).with_name("courtyard")


@pytest.fixture
async def own_org(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Org]:
    """An organisation with its own data directory and no periodic sweep."""
    async with org_context(databases, tmp_path, files={"sweep_interval_minutes": 0}) as org:
        yield org


async def run(org: Org, *args: str, **env: str) -> tuple[int, str]:
    settings = org.server.settings
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURTYARD_")}
    environment.update(
        COURTYARD_DATABASE__URL=settings.database_url(),
        COURTYARD_DATA_DIR=str(settings.data_dir),
        NO_COLOR="1",
        COLUMNS="200",
        **env,
    )
    process = await asyncio.create_subprocess_exec(
        str(COURTYARD),
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_files_sweep_removes_only_unattached_files_past_the_grace(own_org: Org) -> None:
    person = await own_org.person("cli")
    channel = await person.create_channel()
    kept = await upload_ok(person, b"kept", "kept.txt")
    loose = await upload_ok(person, b"loose", "loose.txt")
    response = await person.post(
        f"/api/v1/channels/{channel['id']}/messages", {"text": "x", "file_ids": [kept["id"]]}
    )
    assert response.status_code == 201
    code, output = await run(own_org, "files", "sweep")
    assert code == 0, output
    assert "removed 0" in output
    code, output = await run(own_org, "files", "sweep", COURTYARD_FILES__ORPHAN_GRACE_HOURS="0")
    assert code == 0, output
    assert "removed 1" in output
    assert (await person.get(f"/api/v1/files/{loose['id']}/content")).status_code == 404
    assert (await person.get(f"/api/v1/files/{kept['id']}/content")).status_code == 200


async def test_search_reindex_rebuilds_a_lost_index(own_org: Org) -> None:
    person = await own_org.person("indexer")
    channel = await person.create_channel()
    await person.send(channel["id"], "messages from before the upgrade 升级之前")
    query = {"q": f"升级 upgrade in:#{channel['name']}"}
    assert len((await person.get("/api/v1/search", params=query)).json()["results"]) == 1
    async with own_org.server.services.context.storage.transaction() as uow:
        await uow.conn.execute(delete(search_documents))
    assert (await person.get("/api/v1/search", params=query)).json()["results"] == []
    code, output = await run(own_org, "search", "reindex")
    assert code == 0, output
    assert "indexed" in output
    assert len((await person.get("/api/v1/search", params=query)).json()["results"]) == 1


# --- courtyard database optimize -------------------------------------------------------------


async def _audited(org: Org, action: str) -> list[tuple[str, dict[str, Any]]]:
    async with org.server.services.context.storage.snapshot() as uow:
        rows = (
            await uow.conn.execute(
                select(audit_log.c.outcome, audit_log.c.details)
                .where(audit_log.c.action == action)
                .order_by(audit_log.c.id)
            )
        ).all()
    return [(outcome, json.loads(details)) for outcome, details in rows]


async def _heap_order(org: Org, channel_ids: list[int]) -> list[tuple[int, int]]:
    """PostgreSQL: (channel_id, seq) of the channels' messages in the order the heap stores
    them. (SQLite's table is stored by that key from the start, ADR 0018.)"""
    ids = ", ".join(str(c) for c in channel_ids)
    async with org.server.services.context.storage.snapshot() as uow:
        rows = await uow.conn.exec_driver_sql(
            f"SELECT channel_id, seq FROM messages WHERE channel_id IN ({ids}) ORDER BY ctid"
        )
        return [(int(c), int(s)) for c, s in rows]


async def test_database_optimize_keeps_every_message_and_stores_channels_in_order(
    own_org: Org,
) -> None:
    person = await own_org.person("keeper")
    first, second = await person.create_channel(), await person.create_channel()
    sent = []
    for n in range(12):  # interleaved, as busy channels arrive
        for channel in (first, second):
            sent.append(await person.send(channel["id"], f"note {n} 笔记 {channel['name']}"))
    before = [
        (await person.get(f"/api/v1/channels/{c['id']}/messages", params={"limit": 50})).json()
        for c in (first, second)
    ]
    query = {"q": f"笔记 in:#{first['name']}"}
    found_before = (await person.get("/api/v1/search", params=query)).json()["results"]
    assert len(found_before) == 12
    postgresql = own_org.server.settings.database_url().startswith("postgres")
    if postgresql:
        heap = await _heap_order(own_org, [first["id"], second["id"]])
        assert heap != sorted(heap)  # arrival order: the two channels interleave

    code, output = await run(own_org, "database", "optimize", "--yes")
    assert code == 0, output
    if postgresql:
        assert "messages in channel order" in output and "planner statistics" in output
    else:
        assert "search index merged" in output

    after = [
        (await person.get(f"/api/v1/channels/{c['id']}/messages", params={"limit": 50})).json()
        for c in (first, second)
    ]
    assert after == before
    assert (await person.get("/api/v1/search", params=query)).json()["results"] == found_before
    if postgresql:
        order = await _heap_order(own_org, [first["id"], second["id"]])
        assert order == sorted(order) and len(order) == len(sent)
    assert (await person.send(first["id"], "after the upkeep"))["seq"] == 13
    entries = await _audited(own_org, "database.optimized")
    assert [outcome for outcome, _ in entries] == ["success"]
    details = entries[0][1]
    assert details["backend"] == ("postgresql" if postgresql else "sqlite")
    assert details["via"] == "cli" and details["vacuum"] is False and details["steps"]


async def _compaction(org: Org, db_backend: str) -> int | bool:
    """SQLite: the search index's segment count. PostgreSQL: whether ``messages`` is marked
    clustered on its (channel_id, seq) key."""
    if db_backend == "sqlite":
        path = org.server.settings.database_url().removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as db:
            return segments(db)
    async with org.server.services.context.storage.snapshot() as uow:
        rows = await uow.conn.exec_driver_sql(
            "SELECT indisclustered FROM pg_index WHERE indexrelid = "
            "'uq_messages_channel_id_seq'::regclass"
        )
        return bool(rows.scalar_one())


async def test_database_optimize_compacts_what_reads_go_through(
    own_org: Org, db_backend: str
) -> None:
    person = await own_org.person("merger")
    channel = await person.create_channel()
    for n in range(40):  # one write transaction (on SQLite, one new index segment) each
        await person.send(channel["id"], f"segment {n} 段落")
    before = await _compaction(own_org, db_backend)
    # On SQLite no prompt: the merge holds the write lock a few milliseconds at a time.
    args = ("--yes",) if db_backend == "postgres" else ()
    code, output = await run(own_org, "database", "optimize", *args)
    assert code == 0, output
    after = await _compaction(own_org, db_backend)
    if db_backend == "sqlite":
        assert isinstance(before, int) and before >= 2
        assert after == 1
        assert f"segments {before} -> 1" in output
    else:
        assert (before, after) == (False, True)
    query = {"q": f"段落 in:#{channel['name']}", "limit": 50}
    assert len((await person.get("/api/v1/search", params=query)).json()["results"]) == 40


async def test_database_optimize_vacuum_returns_free_space(own_org: Org, db_backend: str) -> None:
    person = await own_org.person("vacuumer")
    channel = await person.create_channel()
    for n in range(60):
        await person.send(channel["id"], f"{n} " + "long line of text " * 40)
    path = own_org.server.settings.database_url().removeprefix("sqlite:///")
    if db_backend == "sqlite":
        async with own_org.server.services.context.storage.transaction() as uow:
            await uow.conn.execute(delete(search_documents))
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert db.execute("PRAGMA freelist_count").fetchone()[0] > 0
    code, output = await run(own_org, "database", "optimize", "--vacuum", "--yes")
    assert code == 0, output
    assert "free space returned" in output
    if db_backend == "sqlite":
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    else:
        assert "VACUUM (ANALYZE)" in output
    ((_, details),) = await _audited(own_org, "database.optimized")
    assert details["vacuum"] is True


async def test_database_optimize_asks_before_blocking_writes(own_org: Org, db_backend: str) -> None:
    # --vacuum blocks writes on both databases; on PostgreSQL every run does (CLUSTER).
    runs = [("--vacuum",)] + ([()] if db_backend == "postgres" else [])
    for extra in runs:
        code, output = await run(own_org, "database", "optimize", *extra)
        assert code == 2, output
        assert "--yes" in output
    assert await _audited(own_org, "database.optimized") == []


async def test_database_optimize_gives_up_on_a_held_lock_and_changes_nothing(
    own_org: Org, db_backend: str
) -> None:
    person = await own_org.person("waiter")
    channel = await person.create_channel()
    await person.send(channel["id"], "under lock")
    settings = own_org.server.settings
    if db_backend == "postgres":
        holder = await asyncpg.connect(settings.database_url())
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE messages IN ACCESS SHARE MODE")
    else:
        holder_db = sqlite3.connect(
            settings.database_url().removeprefix("sqlite:///"), isolation_level=None
        )
        holder_db.execute("BEGIN IMMEDIATE")
    try:
        code, output = await run(own_org, "database", "optimize", "--yes", "--lock-timeout", "1")
    finally:
        if db_backend == "postgres":
            await transaction.rollback()
            await holder.close()
        else:
            holder_db.execute("ROLLBACK")
            holder_db.close()
    assert code == 1, output
    assert "try again later" in output
    assert "Traceback" not in output
    entries = await _audited(own_org, "database.optimized")
    if db_backend == "postgres":
        ((outcome, details),) = entries
        assert outcome == "failure" and "try again later" in str(details["reason"])
    else:
        # SQLite's lock holder blocks the audit entry as well: the operator is told so.
        assert entries == []
        assert "could not be written to the audit log" in output
    assert (await person.send(channel["id"], "after"))["seq"] == 2


async def test_database_optimize_help_says_what_it_locks() -> None:
    process = await asyncio.create_subprocess_exec(
        str(COURTYARD),
        "database",
        "optimize",
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    text = output.decode()
    assert "CLUSTER" in text and "--vacuum" in text and "--lock-timeout" in text
