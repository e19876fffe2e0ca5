"""SQLite's write-ahead log is checkpointed by a thread of its own (storage/checkpoint.py),
never inside a commit on the event loop. SQLite is embedded, so this runs in both suites."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import text

from courtyard.storage.engine import Database


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
        for _ in range(100):  # the thread checkpoints about once a second
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
