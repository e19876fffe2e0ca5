"""The lock SQLite's writers take in this process, handed to every waiter at once.

An inline SQLite unit of work (``engine._InlineUnit``) runs its statements and its COMMIT
without giving the event loop up, so the lock is rarely contended. When it is, a unit of
work that does give it up holds it across loop turns. That can be the checkpoint thread's
held pass (storage/checkpoint.py), or a unit that awaits something. Every write arriving
meanwhile queues.

``asyncio.Lock`` then hands over to one waiter per loop turn: the releaser wakes the first,
which runs on the next turn, and so on. Under load a turn takes milliseconds, so the last of
twenty writers queued behind a 40 ms hold waited twenty turns more. In S5 at 1,000 actions/s
the wait's p99 was 93–168 ms with ``asyncio.Lock`` and 23–70 ms with this lock
(docs/benchmarks.md, session of 2026-11-29 from 16:54 UTC).

``WritersLock.release`` wakes every waiter. They run in the order they queued, in the same
turn. Each takes the lock in turn and, not yielding, gives it back before the next runs. A
waiter that finds the lock taken again, because the one before it yielded while holding it,
queues again. Exclusion is never shared, and no wake-up can be lost to a cancelled waiter,
because all of them are woken.
"""

from __future__ import annotations

import asyncio


class WritersLock:
    """A mutual-exclusion lock for coroutines whose release wakes all waiters."""

    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[asyncio.Future[None]] = []

    def locked(self) -> bool:
        """Whether a coroutine holds the lock."""
        return self._locked

    async def acquire(self) -> bool:
        """Wait until the lock is free, then take it."""
        while self._locked:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self._locked = True
        return True

    def release(self) -> None:
        """Free the lock and wake every coroutine waiting for it."""
        if not self._locked:
            raise RuntimeError("WritersLock released while not held")
        self._locked = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
