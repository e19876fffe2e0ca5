"""New messages' search documents on PostgreSQL, written just after the messages.

Writing the search index inside a send's transaction made every acknowledgement wait for it:
on PostgreSQL the two GIN-indexed inserts were most of a batch's statement time, and the
database's process the limit of ingest (docs/adr/0024). There the group commit hands each
batch's documents over once the batch has committed, and they are written in transactions of
their own a few milliseconds later, many at a time, on a connection of their own beside the
sends. SQLite writes them in the send's transaction as before (``deferred`` is false): one
writer on the event loop's core does the same work either way, and measured, the separate
transactions cost more than they saved.

What a user sees does not change:
- **Read your own writes.** A search first waits for ``caught_up()``: everything this process
  queued before the search began is written (or was tried and failed). A search in another
  process finds a new message once its document is written, ``interval`` seconds later.
- **Deleted and edited meanwhile.** A document is written only for a message that is still
  there and not deleted, and never over an edit's document (``SearchRepository.index``).
- **Bounded.** At most ``max_pending`` documents wait: past that, the group commit waits
  until half of them are written before its next batch (``full``, ``room()``), so sends slow
  down to what indexing keeps up with instead of memory growing.
- **Not lost.** ``close()`` (run by ``Database.dispose``) writes the rest. A process killed with
  documents queued leaves messages without documents; every process looks for those among the
  newest messages when it starts (``services.search.Search.index_missing``).
- **A failed write** (the database restarting) keeps its documents, is logged and is retried
  after ``retry_after`` seconds; searches waiting for it go on without them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from courtyard.storage.engine import background_work
from courtyard.storage.repositories.search import SearchDocument, SearchRepository

if TYPE_CHECKING:
    from courtyard.storage.engine import Database

logger = logging.getLogger(__name__)

#: Seconds a document waits for others to share its transaction.
INTERVAL = 0.005
#: Documents per transaction at most. On SQLite (used there only when asked) a transaction
#: holds the one writer's lock and the event loop: 128 documents take about 2 ms, as long as a
#: group-commit batch. PostgreSQL's run on a connection of their own, beside the sends.
SQLITE_CHUNK = 128
POSTGRESQL_CHUNK = 1000
#: Documents queued at most before sends wait for the backlog.
MAX_PENDING = 20_000
RETRY_AFTER = 1.0


class SearchBacklog:
    """Documents of committed messages, written in batches by one task while any wait."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float = INTERVAL,
        chunk: int | None = None,
        max_pending: int = MAX_PENDING,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self._database = database
        #: Whether the group commit hands new messages' documents here (PostgreSQL) or
        #: writes them in the send's own transaction (SQLite; see the module's doc).
        self.deferred = not database.is_sqlite
        self._interval = interval
        self._chunk = chunk or (SQLITE_CHUNK if database.is_sqlite else POSTGRESQL_CHUNK)
        self._max_pending = max_pending
        self._retry_after = retry_after
        #: (number, document): documents are numbered in the order they were queued.
        self._queue: collections.deque[tuple[int, SearchDocument]] = collections.deque()
        self._queued = 0
        #: Every document numbered up to this one has been tried at least once.
        self._tried = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._closing = False
        #: Documents written, and transactions that failed, since start (diagnostics, tests).
        self.written = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """Documents waiting to be written."""
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Whether senders should wait for ``caught_up()`` before adding more."""
        return len(self._queue) >= self._max_pending

    def index_later(self, documents: Sequence[SearchDocument]) -> None:
        """Queue documents of messages that have committed; they are written shortly."""
        if not documents:
            return
        for document in documents:
            self._queued += 1
            self._queue.append((self._queued, document))
        self._start_writer()

    def _start_writer(self) -> None:
        if self._writer is None and self._queue:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_all(), name="search-backlog"
            )

    async def caught_up(self) -> None:
        """Return once every document queued before this call has been written or tried."""
        await self._tried_up_to(self._queued)

    async def room(self) -> None:
        """Return once at most half of ``max_pending`` documents wait: what a full backlog's
        senders wait for. Waiting until it is empty stopped every send for as long as the whole
        backlog took; resuming at the first free place would make each batch wait again."""
        await self._tried_up_to(self._queued - self._max_pending // 2)

    async def _tried_up_to(self, target: int) -> None:
        if self._tried >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        self._start_writer()  # a writer cancelled with the loop that ran it left work
        self._hurry()
        await waiter

    async def close(self) -> None:
        """Write what is queued now (one try each) and stop."""
        self._closing = True
        try:
            self._hurry()
            if self._writer is not None:
                await asyncio.shield(self._writer)
        finally:
            self._closing = False

    def _hurry(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless a searcher or ``close`` is waiting."""
        if self._closing or any(not w.done() for _, w in self._waiters):
            return
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        timer = loop.call_later(seconds, lambda: None if wake.done() else wake.set_result(None))
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    async def _write_all(self) -> None:
        background_work.set(True)  # this task's own context: statement counters skip it
        try:
            await self._pause(self._interval)
            while self._queue:
                take = min(len(self._queue), self._chunk)
                batch = [self._queue.popleft() for _ in range(take)]
                if not await self._write(batch):
                    if self._closing:
                        logger.error(
                            "search index: %d documents left unwritten at shutdown; the next "
                            "start writes them",
                            len(self._queue) + len(batch),
                        )
                        self._queue.clear()
                        self._tried = self._queued
                        self._release()
                        return
                    self._queue.extendleft(reversed(batch))
                    await self._pause(self._retry_after)
                if self._queue:
                    await asyncio.sleep(0)  # let sends queued meanwhile take their turn
        finally:
            self._writer = None
            if not self._queue:  # cancelled mid-write, the batch taken is not owed any more
                self._tried = self._queued
            self._release(everything=True)

    async def _write(self, batch: list[tuple[int, SearchDocument]]) -> bool:
        try:
            async with self._database.write() as conn:
                await SearchRepository(conn).index([document for _, document in batch])
        except Exception:
            self.failures += 1
            logger.exception(
                "search index: writing %d documents failed; retrying in %.0f s",
                len(batch),
                self._retry_after,
            )
            ok = False
        else:
            self.written += len(batch)
            ok = True
        self._tried = max(self._tried, batch[-1][0])
        self._release()
        return ok

    def _release(self, *, everything: bool = False) -> None:
        """Wake the searchers whose documents have all been tried (all, once idle)."""
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._waiters:
            if everything or target <= self._tried:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._waiters = still
