"""SQLite's write-ahead log is checkpointed by a thread of its own (storage/checkpoint.py),
never inside a commit on the event loop. SQLite is embedded, so this runs in both suites."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from courtyard.storage.checkpoint import Checkpointer
from courtyard.storage.engine import WAL_SIZE_LIMIT, Database


async def test_commits_never_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "checkpointed.db"
    database = Database(f"sqlite:///{path}")
    try:
        async with database.write() as conn:
            setting = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
            assert setting == 0  # no commit copies the log back on the event loop
            await conn.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
        # ~4 MB in 200 commits: past the 1,000 pages at which a commit would checkpoint.
        for batch in range(200):
            async with database.write() as conn:
                await conn.execute(
                    text("INSERT INTO filler (body) VALUES (:body)"),
                    [{"body": f"{batch}-{row}-" + "x" * 2000} for row in range(10)],
                )
        checkpointer = database._checkpointer
        assert checkpointer is not None
        runs = checkpointer.runs
        for _ in range(100):  # the thread checkpoints ten times a second
            if checkpointer.runs > runs + 1:
                break
            await asyncio.sleep(0.05)
        assert checkpointer.runs > runs + 1
        # The rows reached the database file itself, not only the log.
        assert path.stat().st_size > 3_000_000
    finally:
        await database.dispose()
    # dispose() stops the thread.
    assert f"sqlite-checkpoint:{path.name}" not in {t.name for t in threading.enumerate()}


async def test_the_log_is_rewound_under_a_steady_stream_of_writes(tmp_path: Path) -> None:
    # A checkpoint alone never shortens the log: only a write that begins once every frame was
    # copied back starts it again from the top. With writes arriving all the time some always
    # land during the checkpoint, so the log grew by every commit (2.5 GB in 30 s of S6)
    # until the checkpoint thread learnt to hold the writers for its last few frames.
    path = tmp_path / "steady.db"
    wal = Path(f"{path}-wal")
    database = Database(f"sqlite:///{path}")
    checkpointer = database._checkpointer
    assert checkpointer is not None
    try:
        async with database.write() as conn:
            await conn.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
        written = await _stream_until_rewound([database], checkpointer)
        # Without rewinds the log is larger than everything written to it.
        await _assert_log_bounded_and_rows_kept(database, wal, written)
        # With one process, holding its writers is enough: SQLite's lock is never taken.
        assert checkpointer.locked_passes == 0
    finally:
        await database.dispose()


async def test_held_writers_wait_and_readers_do_not(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'held.db'}")
    try:
        async with database.write() as conn:
            await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        loop = asyncio.get_running_loop()
        holding = threading.Event()
        release = threading.Event()

        def hold_from_another_thread() -> bool:
            with database._writers_held(5.0) as held:
                holding.set()
                release.wait(5)
                return held

        holder = loop.run_in_executor(None, hold_from_another_thread)
        await loop.run_in_executor(None, holding.wait, 5)

        async def write() -> None:
            async with database.write() as conn:
                await conn.execute(text("INSERT INTO notes (body) VALUES ('during')"))

        writer = asyncio.ensure_future(write())
        await asyncio.sleep(0.2)
        assert not writer.done()  # the write waits for the hold
        async with database.read() as conn:  # reads do not
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 0
        release.set()
        assert await holder is True
        await asyncio.wait_for(writer, 5)
        async with database.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 1
    finally:
        await database.dispose()


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_the_log_is_rewound_when_another_process_writes_too(tmp_path: Path) -> None:
    # Two databases on one file stand for two server processes (``serve --workers 2``): the
    # checkpointing one holds only its own writers, so a transaction of the other's may have
    # begun during a held pass and append to the log instead of rewinding it. The next round
    # sees that and takes SQLite's write lock for its held pass. Without that, on the Intel
    # Xeon VM of 2026-11-29, the log reached 9-14 MB of a 30 MB stream in most runs.
    path = tmp_path / "shared.db"
    wal = Path(f"{path}-wal")
    first, second = Database(f"sqlite:///{path}"), Database(f"sqlite:///{path}")
    checkpointer = first._checkpointer
    assert checkpointer is not None and second._checkpointer is not None
    second._checkpointer.stop()  # one checkpointing process is enough to show it
    try:
        async with first.write() as conn:
            await conn.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
        # Each "process" writes on its own; while one's writers are held, the other's go on.
        written = await _stream_until_rewound([first, second], checkpointer)
        await _assert_log_bounded_and_rows_kept(first, wal, written)
    finally:
        await first.dispose()
        await second.dispose()


#: What the steady-stream tests write (bytes of rows), how fast (bytes a second, all writers
#: together), the size of a row and the rows of a transaction.
STREAM_BYTES = 60_000_000
STREAM_RATE = 8_000_000
ROW_BYTES = 4000
BATCH_ROWS = 5


async def _stream_until_rewound(databases: list[Database], checkpointer: Checkpointer) -> int:
    """Write from every database at once, STREAM_RATE bytes a second in all, until
    STREAM_BYTES are written and the log was rewound five times; returns the bytes written."""
    written = [0]
    interval = len(databases) * BATCH_ROWS * ROW_BYTES / STREAM_RATE
    writers = [
        asyncio.ensure_future(_keep_writing(d, written, interval=interval)) for d in databases
    ]
    try:
        await _until(lambda: written[0] >= STREAM_BYTES and checkpointer.rewinds >= 5)
    finally:
        for writer in writers:
            writer.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
    return written[0]


async def _assert_log_bounded_and_rows_kept(database: Database, wal: Path, written: int) -> None:
    assert _size(wal) < written / 4
    async with database.read() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM filler"))).scalar_one()
    assert count * ROW_BYTES == written


async def _keep_writing(database: Database, written: list[int], *, interval: float) -> None:
    """A steady stream: a transaction of BATCH_ROWS rows every ``interval`` seconds, on a
    schedule (a late write is not made up for), so that the stream's rate does not depend on
    how fast this machine writes. As fast as each write allowed, the stream ran at 12-15 MB/s
    and a single stall of the disk's sync (0.8 s seen on a loaded VM) left a log of 13-22 MB,
    with or without the rewinds under test."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        await _write_batch(database)
        written[0] += BATCH_ROWS * ROW_BYTES
        due = max(due + interval, loop.time())
        await asyncio.sleep(due - loop.time())


async def _write_batch(database: Database) -> None:
    """One transaction of BATCH_ROWS rows of ROW_BYTES each."""
    async with database.write() as conn:
        await conn.execute(
            text("INSERT INTO filler (body) VALUES (:body)"),
            [{"body": "x" * ROW_BYTES} for _ in range(BATCH_ROWS)],
        )


async def _until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the log was not rewound"
        await asyncio.sleep(0.05)


async def test_the_log_file_shrinks_back_after_a_spike(tmp_path: Path) -> None:
    """A reader that keeps an old snapshot (an export, a slow client's replay) stops the
    checkpoint at its snapshot, so the log grows with every write meanwhile. SQLite reuses the
    log's file from the start once it is rewound but never shortens it: without a size limit
    a spike kept its disk space for good."""
    path = tmp_path / "spike.db"
    wal = Path(f"{path}-wal")
    database = Database(f"sqlite:///{path}")
    checkpointer = database._checkpointer
    assert checkpointer is not None
    try:
        async with database.write() as conn:
            await conn.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
            await conn.execute(text("INSERT INTO filler (body) VALUES ('first')"))
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM filler").fetchone() == (1,)
        spike = 3 * WAL_SIZE_LIMIT
        for _ in range(spike // (BATCH_ROWS * ROW_BYTES) + 1):
            await _write_batch(database)
        assert _size(wal) > spike  # held back by the reader's snapshot
        reader.execute("COMMIT")
        reader.close()
        rewinds = checkpointer.rewinds
        # Writes go on after the reader is gone; the checkpoint thread rewinds the log.
        await _until(lambda: checkpointer.rewinds > rewinds)
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO filler (body) VALUES ('after')"))
        assert _size(wal) <= WAL_SIZE_LIMIT
    finally:
        await database.dispose()
