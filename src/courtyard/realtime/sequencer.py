"""Putting durable events in position order before the hub sees them.

Events reach a process from the bus (possibly out of order, duplicated or missing) and from
its own commits. Positions become visible in commit order (see the outbox), so once position
N has been seen, every lower position is final in the database: either present or a hole left
by a transaction that failed after allocating it. A gap is therefore repaired by reading the
missing range from the database, and whatever is absent there is skipped for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from courtyard.storage.repositories.events import StoredEvent

logger = logging.getLogger(__name__)

FetchRange = Callable[[int, int, int], Awaitable[list[StoredEvent]]]
FETCH_LIMIT = 1000
Deliver = Callable[[StoredEvent], None]


class Sequencer:
    """Delivers each committed event exactly once, in position order."""

    def __init__(self, deliver: Deliver, fetch_range: FetchRange, *, position: int = 0) -> None:
        self._deliver = deliver
        self._fetch_range = fetch_range
        self.position = position
        self._pending: dict[int, StoredEvent] = {}
        self._repair: asyncio.Task[None] | None = None
        self._filling = asyncio.Lock()
        self.repairs = 0

    def receive(self, events: Iterable[StoredEvent]) -> None:
        """Accept events in any order; deliver what is now contiguous, repair what is not."""
        for event in events:
            if event.position > self.position:
                self._pending.setdefault(event.position, event)
        self._drain()
        if self._pending and self._repair is None:
            self._repair = asyncio.create_task(self._repair_gap(), name="event-gap-repair")

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            following = self.position + 1
            event = pending.pop(following, None)
            if event is None:
                return
            self._deliver_one(event)

    def _deliver_one(self, event: StoredEvent) -> None:
        self.position = event.position
        try:
            self._deliver(event)
        except Exception:
            logger.exception("delivering event %s failed", event.position)

    async def catch_up_to(self, newest: int) -> None:
        """Make sure everything up to ``newest`` (known committed) is delivered."""
        if newest <= self.position:
            return
        await self._fill(newest)

    async def _repair_gap(self) -> None:
        try:
            while self._pending:
                await self._fill(max(self._pending))
        except Exception:
            logger.exception("repairing the event stream failed; retrying on the next event")
        finally:
            self._repair = None

    async def _fill(self, target: int) -> None:
        async with self._filling:
            while self.position < target:
                found = await self._fetch_range(self.position, target, FETCH_LIMIT)
                self.repairs += 1
                for event in found:
                    if event.position > self.position:
                        self._pending.setdefault(event.position, event)
                # Everything up to the last position read is final: deliver in order.
                upto = found[-1].position if len(found) == FETCH_LIMIT else target
                for position in sorted(p for p in self._pending if p <= upto):
                    event = self._pending.pop(position)
                    if position > self.position:
                        self._deliver_one(event)
                # Positions that were never found are holes: skip past them.
                self.position = max(self.position, upto)
                self._drain()
