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

Other processes writing to the same file (``serve --workers``) are not held by that pause: one
of their transactions may have begun during the pass, and it appends to the log instead of
rewinding it. The next round sees it (the log's header, which SQLite writes anew on every
rewind, is unchanged) and holds every process's writers for its last pass by taking SQLite's
own write lock; they wait a few milliseconds in SQLite's busy handler (docs/adr/0024).
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

#: Seconds to wait for SQLite's write lock before a locked pass (another process's transaction
#: to end); without it, an ordinary held pass.
LOCK_TIMEOUT = 0.05

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
        #: The log's header when a held pass last copied everything (see ``_log_header``).
        self._settled_header: bytes | None = None
        #: Held passes that also took SQLite's write lock (tests and diagnostics).
        self.locked_passes = 0

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
        locker: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stopped.wait(self._interval)
                try:
                    if conn is None:
                        conn = self._connect()
                    if locker is None:
                        locker = self._connect(timeout=LOCK_TIMEOUT)
                    self._checkpoint(conn, locker)
                except sqlite3.Error as exc:  # not there yet, or busy: the next round tries again
                    logger.debug("checkpoint of %s skipped: %s", self._path, exc)
                if stopping:
                    return
        finally:
            for opened in (conn, locker):
                if opened is not None:
                    opened.close()

    def _checkpoint(self, conn: sqlite3.Connection, locker: sqlite3.Connection) -> None:
        # The counts are those of the log when a pass began; writes may have added frames
        # since, so "all copied" is only known with the writers held. Each pass copies what
        # was written during the one before, so a few passes without holding anyone leave the
        # held pass only a few milliseconds of writes to copy (a second's worth, straight
        # after the first pass, held the writers for 12-20 ms under S6's load).
        #
        # Written to since the last held pass copied everything, but with the same header:
        # not rewound, because a transaction of another process had begun during that pass.
        header_at_start = self._log_header()
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
            # Other processes' writers are held too only after a round that left the log
            # unrewound. A RESTART checkpoint, which waits for every writer, rewound less
            # often in the two-process test (docs/adr/0023).
            unrewound = header_at_start is not None and header_at_start == self._settled_header
            logged, copied = self._locked_pass(conn, locker) if unrewound else self._pass(conn)
            header_now = self._log_header()
        if copied >= logged:
            self._settled = (logged, copied)
            self._settled_header = header_now
            self.rewinds += 1

    def _locked_pass(self, conn: sqlite3.Connection, locker: sqlite3.Connection) -> tuple[int, int]:
        """A pass with SQLite's write lock held by ``locker``, so that no process writes during
        it; an ordinary pass if another process's transaction keeps the lock LOCK_TIMEOUT."""
        try:
            locker.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return self._pass(conn)
        try:
            self.locked_passes += 1
            return self._pass(conn)
        finally:
            locker.execute("ROLLBACK")

    def _log_header(self) -> bytes | None:
        """The log's checkpoint sequence number and first salt (bytes 12-20 of its header),
        which SQLite changes each time it starts the log again; None without a log."""
        try:
            with open(f"{self._path}-wal", "rb") as log:
                header = log.read(20)
        except OSError:
            return None
        return header[12:20] if len(header) == 20 else None

    def _pass(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One PASSIVE checkpoint: the log's frames, and how many of them are copied back."""
        _busy, logged, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        return int(logged), int(copied)

    def _connect(self, timeout: float = 1) -> sqlite3.Connection:
        # ``mode=rw``: never create the file (it appears with the engine's first connection,
        # and a deleted database stays deleted). Autocommit: ``_locked_pass`` begins its own.
        uri = Path(self._path).resolve().as_uri() + "?mode=rw"
        return sqlite3.connect(
            uri, uri=True, timeout=timeout, check_same_thread=False, isolation_level=None
        )
