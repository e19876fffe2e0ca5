"""Whole-database upkeep an operator runs now and then (``courtyard database optimize``).

What keeps reads fast as the database grows, per backend (ADR 0019):

- PostgreSQL stores rows in arrival order, so the messages of busy channels interleave and a
  page of old history reads one table page per message. ``CLUSTER`` rewrites ``messages`` in
  ``(channel_id, seq)`` order (ADR 0018 measured a cold page's p99 going from 4.4–5.7 ms to
  0.6–1.9 ms at 10M messages), then ``ANALYZE`` refreshes the planner's statistics.
  ``CLUSTER`` holds an exclusive lock on the table while it runs: sends and reads wait.
- SQLite already stores each channel's messages together (ADR 0018). Its full-text index grows
  as many small segments, one or more per write transaction, that a search reads one by one;
  merging them into one is what ``optimize`` does. It merges a few hundred pages per
  transaction, so a running server's writes wait milliseconds at a time, not minutes.
- ``vacuum`` (optional): SQLite rewrites the file without its free pages (after deletions, or
  the upgrade to migration 0006) and holds the write lock for the whole rewrite; PostgreSQL
  runs ``VACUUM (ANALYZE)``.

The statements run outside any transaction of the unit of work (``CLUSTER``'s progress is read
from a second connection, ``VACUUM`` may not run in a transaction): this module talks to the
drivers directly, the way ``storage/migrate.py`` talks to Alembic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from courtyard.storage.engine import Database

logger = logging.getLogger(__name__)

#: ``progress(step, done, total)``: called while a step runs; ``total`` is None when unknown.
#: On SQLite it is called from a worker thread.
ProgressCallback = Callable[[str, int | None, int | None], None]

CLUSTER_STEP = "messages in channel order"
ANALYZE_STEP = "planner statistics"
VACUUM_STEP = "free space returned"
MERGE_STEP = "search index merged"

#: The index ``CLUSTER`` orders ``messages`` by (the unique key (channel_id, seq)).
CLUSTER_INDEX = "uq_messages_channel_id_seq"
#: Pages of the full-text index merged per SQLite transaction: ~2 MB written, a few ms.
MERGE_PAGES = 500
#: Merge transactions at most, whatever the index's size (a bound, never reached in practice:
#: each one merges MERGE_PAGES pages, so this is ~100 GB of index).
MAX_MERGES = 50_000
#: How often CLUSTER's progress is read.
PROGRESS_INTERVAL_S = 0.5
#: VACUUM writes a copy of the file and then the log of it: refuse with less free disk than
#: this many times the file's size.
VACUUM_DISK_FACTOR = 2.1


class UpkeepRefused(Exception):
    """A step could not start or finish, for a reason the operator can act on."""


@dataclass(frozen=True, slots=True)
class StepDone:
    """One finished step: what it was, how long it took, and what it did."""

    name: str
    seconds: float
    detail: str


async def optimize(
    database: Database,
    *,
    vacuum: bool = False,
    lock_timeout_s: float = 30.0,
    progress: ProgressCallback | None = None,
) -> list[StepDone]:
    """Run the backend's upkeep steps in order; returns what each did.

    ``lock_timeout_s``: how long a step may wait for the locks it needs (behind a long
    transaction, say) before giving up with :class:`UpkeepRefused`; nothing has changed then.
    """
    report = progress or (lambda _step, _done, _total: None)
    if database.is_sqlite:
        path = database.url.database or ""
        return await asyncio.to_thread(_sqlite_steps, path, vacuum, lock_timeout_s, report)
    return await _postgresql_steps(database, vacuum, lock_timeout_s, report)


# --- PostgreSQL ------------------------------------------------------------------------------

# Blocks when CLUSTER scans the heap in order; rows against the planner's row estimate when
# it walks the index (it chooses), nothing to count while it sorts or rebuilds the indexes.
_CLUSTER_PROGRESS = (
    "SELECT p.phase, p.heap_blks_scanned, p.heap_blks_total, p.heap_tuples_scanned, "
    "c.reltuples FROM pg_stat_progress_cluster AS p JOIN pg_class AS c ON c.oid = p.relid "
    "WHERE p.relid = 'messages'::regclass"
)


async def _postgresql_steps(
    database: Database, vacuum: bool, lock_timeout_s: float, report: ProgressCallback
) -> list[StepDone]:
    steps: list[StepDone] = []
    async with database.engine.connect() as conn:
        raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
        # Outside a transaction; the session settings are reset before the pool has it back.
        await raw.execute(f"SET lock_timeout = {int(lock_timeout_s * 1000)}")
        try:
            started = time.perf_counter()
            size = await raw.fetchval("SELECT pg_total_relation_size('messages')")
            finished = asyncio.Event()
            watcher = asyncio.create_task(_watch_cluster(database, report, finished))
            try:
                await raw.execute(f"CLUSTER messages USING {CLUSTER_INDEX}")
            except asyncpg.LockNotAvailableError:
                raise UpkeepRefused(
                    f"could not lock the messages table within {lock_timeout_s:g} s: a long "
                    "transaction holds it; nothing was changed, try again later"
                ) from None
            finally:
                # Told to stop, never cancelled: a query cancelled mid-flight would leave its
                # connection in an unknown state.
                finished.set()
                await watcher
            steps.append(
                StepDone(
                    CLUSTER_STEP,
                    time.perf_counter() - started,
                    f"rewrote {_megabytes(size)} (table and indexes)",
                )
            )
            started = time.perf_counter()
            report(ANALYZE_STEP, None, None)
            if vacuum:
                await raw.execute("VACUUM (ANALYZE)")
                steps.append(
                    StepDone(VACUUM_STEP, time.perf_counter() - started, "VACUUM (ANALYZE)")
                )
            else:
                await raw.execute("ANALYZE messages")
                steps.append(StepDone(ANALYZE_STEP, time.perf_counter() - started, "messages"))
        except asyncpg.LockNotAvailableError:
            raise UpkeepRefused(
                f"could not take a lock within {lock_timeout_s:g} s; try again later"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await raw.execute("RESET lock_timeout")
    return steps


async def _watch_cluster(
    database: Database, report: ProgressCallback, finished: asyncio.Event
) -> None:
    """Report CLUSTER's phase and heap blocks from a second connection until ``finished``.

    Progress is only for the operator's eyes: if it cannot be read, CLUSTER goes on without it.
    """
    report(CLUSTER_STEP, None, None)
    try:
        async with database.engine.connect() as conn:
            raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), PROGRESS_INTERVAL_S)
                    return
                row = await raw.fetchrow(_CLUSTER_PROGRESS)
                if row is None:
                    continue
                step = f"{CLUSTER_STEP}: {row['phase']}"
                if row["heap_blks_total"]:
                    report(step, int(row["heap_blks_scanned"]), int(row["heap_blks_total"]))
                elif row["phase"] == "index scanning heap" and row["reltuples"] > 0:
                    total = int(row["reltuples"])
                    report(step, min(int(row["heap_tuples_scanned"]), total), total)
                else:
                    report(step, None, None)
    except Exception as exc:  # progress is optional; the CLUSTER itself reports its errors
        logger.debug("CLUSTER progress unavailable: %s", exc)


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_steps(
    path: str, vacuum: bool, lock_timeout_s: float, report: ProgressCallback
) -> list[StepDone]:
    if not path or not Path(path).is_file():
        raise UpkeepRefused(f"no database file at {path!r}")
    # ``mode=rw``: never create a database here.
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=lock_timeout_s, isolation_level=None)
    try:
        steps = [_merge_search_index(conn, report)]
        if vacuum:
            steps.append(_vacuum(conn, path, report))
        return steps
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise UpkeepRefused(
                f"the database stayed locked for {lock_timeout_s:g} s; try again later"
            ) from None
        raise
    finally:
        conn.close()


def _merge_search_index(conn: sqlite3.Connection, report: ProgressCallback) -> StepDone:
    """Merge the full-text index's segments, MERGE_PAGES pages per transaction.

    A negative page count puts every segment on one level first and merges as few as two, so
    repeating it ends with one segment; a round that changes fewer than two rows did nothing
    (FTS5's documented test for "done").
    """
    started = time.perf_counter()
    before = segments(conn)
    rounds = 0
    report(MERGE_STEP, 0, None)
    for rounds in range(1, MAX_MERGES + 1):
        changes = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO search_fts(search_fts, rank) VALUES ('merge', ?)", (-MERGE_PAGES,)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        report(MERGE_STEP, rounds * MERGE_PAGES, None)
        if conn.total_changes - changes < 2:
            break
    after = segments(conn)
    return StepDone(
        MERGE_STEP,
        time.perf_counter() - started,
        f"segments {before:,} -> {after:,} in {rounds} transaction(s)",
    )


def segments(conn: sqlite3.Connection) -> int:
    """How many segments the full-text index has (a search reads each one)."""
    row: Any = conn.execute("SELECT count(DISTINCT segid) FROM search_fts_idx").fetchone()
    return int(row[0])


def _vacuum(conn: sqlite3.Connection, path: str, report: ProgressCallback) -> StepDone:
    size = Path(path).stat().st_size
    free = shutil.disk_usage(Path(path).resolve().parent).free
    if free < size * VACUUM_DISK_FACTOR:
        raise UpkeepRefused(
            f"VACUUM needs about {_megabytes(int(size * VACUUM_DISK_FACTOR))} of free disk next "
            f"to the database, and {_megabytes(free)} is free; the search index was merged, "
            "nothing else changed"
        )
    report(VACUUM_STEP, None, None)
    started = time.perf_counter()
    conn.execute("VACUUM")
    # The rewrite went through the write-ahead log: copy it back and give its space back too.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    after = Path(path).stat().st_size
    return StepDone(
        VACUUM_STEP,
        time.perf_counter() - started,
        f"file {_megabytes(size)} -> {_megabytes(after)}",
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
