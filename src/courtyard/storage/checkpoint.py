"""SQLite's WAL checkpoints, off the event loop.

By default the connection that commits when the write-ahead log passes 1,000 pages copies the
log back into the database file and syncs it, inside that commit. Courtyard's ordinary
statements run on the event loop (``sqlite_inline``), so every few hundred commits one of them
stalled every request and every delivery of the process for the length of a checkpoint:
20-24 ms on this project's reference machine (`bench/ckpt` figures in docs/benchmarks.md; 83
of 20,000 single-row commits over 5 ms with automatic checkpoints, none without).

So the engine's connections turn automatic checkpoints off and this thread, with a connection
of its own, runs a PASSIVE checkpoint about once a second: it copies what no reader still
needs, never waits for a lock and never blocks the writer. sqlite3 releases the GIL while it
writes and syncs, so the event loop keeps running meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

#: Seconds between checkpoints.
INTERVAL = 1.0


class Checkpointer:
    """A daemon thread checkpointing one SQLite database file until :meth:`stop`."""

    def __init__(self, path: str, interval: float = INTERVAL) -> None:
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqlite-checkpoint:{Path(path).name}", daemon=True
        )
        #: Checkpoints run so far (tests and diagnostics).
        self.runs = 0

    def start(self) -> None:
        """Start checkpointing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after a last checkpoint (waits up to a few seconds)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stopped.wait(self._interval)
                try:
                    if conn is None:
                        conn = self._connect()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error as exc:  # not there yet, or busy: the next round tries again
                    logger.debug("checkpoint of %s skipped: %s", self._path, exc)
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        # ``mode=rw``: never create the file (it appears with the engine's first connection,
        # and a deleted database stays deleted).
        uri = Path(self._path).resolve().as_uri() + "?mode=rw"
        return sqlite3.connect(uri, uri=True, timeout=1, check_same_thread=False)
