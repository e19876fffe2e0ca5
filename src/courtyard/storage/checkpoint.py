"""SQLite's WAL checkpoints, off the event loop.

By default the connection that commits when the write-ahead log passes 1,000 pages copies the
log back into the database file and syncs it, inside that commit. Courtyard's ordinary
statements run on the event loop (``sqlite_inline``), so every few hundred commits one of them
stalled every request and every delivery of the process for the length of a checkpoint:
20-24 ms on this project's reference machine (`bench/ckpt` figures in docs/benchmarks.md; 83
of 20,000 single-row commits over 5 ms with automatic checkpoints, none without).

So the engine's connections turn automatic checkpoints off and this thread, with a connection
of its own, runs a PASSIVE checkpoint ten times a second: it copies what no reader still
needs, never waits for a lock and never blocks the writer. sqlite3 releases the GIL while it
writes and syncs, so the event loop keeps running meanwhile.

A checkpoint alone never shortens the log: SQLite starts writing it from the beginning again
only when a write transaction begins after every frame was copied back. Under a steady stream
of writes some always arrive during the checkpoint, so the log grew without end (2.5 GB in
30 s of S6, docs/adr/0023), and each commit appended to an ever longer file. So when frames
remain after a few passes, the thread asks the database to hold its writers (``hold``: an
application-level pause, so the event loop keeps running and only writes wait) and copies the
few frames written meanwhile; the next write transaction then rewinds the log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

logger = logging.getLogger(__name__)

#: Seconds between checkpoints. Each round holds the writers for what was written during its
#: last pass, so short rounds mean short holds: under S6 at 5,000 sends/s the acknowledgement
#: p99 was 21-25 ms with a round a second, 11-14 ms with ten (docs/adr/0023).
INTERVAL = 0.1
#: Seconds to wait for the writers to pause before giving up until the next round.
HOLD_TIMEOUT = 1.0
#: Passes without holding the writers before the held one, at most ...
UNHELD_PASSES = 4
#: ... stopping early after a pass this short (seconds): what it left is little to copy.
SHORT_PASS = 0.003

#: ``hold(timeout)``: a context in which the database's writers are paused; it yields whether
#: they paused within ``timeout`` seconds.
WriterHold = Callable[[float], AbstractContextManager[bool]]


class Checkpointer:
    """A daemon thread checkpointing one SQLite database file until :meth:`stop`."""

    def __init__(
        self, path: str, interval: float = INTERVAL, *, hold: WriterHold | None = None
    ) -> None:
        self._path = path
        self._interval = interval
        self._hold = hold
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqlite-checkpoint:{Path(path).name}", daemon=True
        )
        #: Checkpoints run so far (tests and diagnostics).
        self.runs = 0
        #: Checkpoints that copied the whole log back with the writers held, so that the next
        #: write rewinds it (tests and diagnostics).
        self.rewinds = 0
        self._settled = (0, 0)

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
                    self._checkpoint(conn)
                except sqlite3.Error as exc:  # not there yet, or busy: the next round tries again
                    logger.debug("checkpoint of %s skipped: %s", self._path, exc)
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        # The counts are those of the log when a pass began; writes may have added frames
        # since, so "all copied" is only known with the writers held. Each pass copies what
        # was written during the one before, so a few passes without holding anyone leave the
        # held pass only a few milliseconds of writes to copy (a second's worth, straight
        # after the first pass, held the writers for 12-20 ms under S6's load).
        for _ in range(UNHELD_PASSES):
            started = time.monotonic()
            logged, copied = self._pass(conn)
            if logged <= 0 or (logged, copied) == self._settled:
                return  # an empty log, or untouched since the last held pass: nothing to do
            if self._hold is None or time.monotonic() - started < SHORT_PASS:
                break
        if self._hold is None:
            return
        with self._hold(HOLD_TIMEOUT) as held:
            if not held:
                return
            # Other processes writing to the same file (``serve --workers``) are not held: a
            # write of theirs during this pass leaves frames behind, and the next round tries
            # again. A RESTART checkpoint, which waits for every writer, rewound less often
            # in the two-process test (docs/adr/0023).
            logged, copied = self._pass(conn)
        if copied >= logged:
            self._settled = (logged, copied)
            self.rewinds += 1

    def _pass(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One PASSIVE checkpoint: the log's frames, and how many of them are copied back."""
        _busy, logged, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        return int(logged), int(copied)

    def _connect(self) -> sqlite3.Connection:
        # ``mode=rw``: never create the file (it appears with the engine's first connection,
        # and a deleted database stays deleted).
        uri = Path(self._path).resolve().as_uri() + "?mode=rw"
        return sqlite3.connect(uri, uri=True, timeout=1, check_same_thread=False)
