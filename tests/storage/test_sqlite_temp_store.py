"""SQLite keeps a transaction's temporary data in memory (ADR 0020).

A multi-row insert into a table with a unique index needs a statement journal, so that a
constraint failure undoes only that statement; with SQLite's default ``temp_store`` the journal
goes to a temporary file once it outgrows 64 KiB, which the send path's batches did on every
transaction. SQLite is embedded, so this runs in both suites."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from courtyard.storage.engine import Database


def _temporary_files() -> list[str]:
    """Open files of this process that are SQLite temporary files (``etilqs_*``)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "etilqs_" in target:
            found.append(target)
    return found


async def test_a_large_statement_in_a_transaction_writes_no_temporary_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'temp-store.db'}")
    try:
        async with database.write() as conn:
            assert (await conn.execute(text("PRAGMA temp_store"))).scalar_one() == 2  # MEMORY
            await conn.execute(
                text("CREATE TABLE rows_probe (id INTEGER PRIMARY KEY, key TEXT UNIQUE, body TEXT)")
            )
        opened_before = _temporary_files()
        async with database.write() as conn:
            values = ", ".join(f"('k{n}', '{'x' * 1000}')" for n in range(1000))
            await conn.execute(text(f"INSERT INTO rows_probe (key, body) VALUES {values}"))
            # Rewrites the ~1 MB of pages the statement above made dirty, and may fail on the
            # unique key: SQLite journals the pages' earlier content for this statement.
            await conn.execute(text("UPDATE rows_probe SET key = key || '-2'"))
            during = _temporary_files()
        assert during == opened_before
        async with database.read() as conn:
            keys = (await conn.execute(text("SELECT min(key) FROM rows_probe"))).scalar_one()
        assert keys == "k0-2"
    finally:
        await database.dispose()
