"""SQLite's writers' lock (storage/writers_lock.py): exclusive, and once released every waiter
goes in the same loop turn instead of one per turn."""

from __future__ import annotations

import asyncio

import pytest

from courtyard.storage.writers_lock import WritersLock


async def _turns_until(condition: object, limit: int = 1000) -> int:
    turns = 0
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0)
        turns += 1
        assert turns < limit
    return turns


async def test_writers_queued_behind_a_holder_all_go_in_the_turn_it_lets_go() -> None:
    lock = WritersLock()
    await lock.acquire()
    done: list[int] = []

    async def unit(n: int) -> None:
        async with lock:
            done.append(n)  # no await while holding it, like an inline SQLite unit of work

    tasks = [asyncio.create_task(unit(n)) for n in range(20)]
    await asyncio.sleep(0)  # every one of them is waiting now
    assert done == []
    lock.release()
    # asyncio.Lock takes a turn per waiter here (20); these all run in the next one.
    assert await _turns_until(lambda: len(done) == 20) <= 2
    assert done == list(range(20))  # in the order they queued
    await asyncio.gather(*tasks)
    assert not lock.locked()


async def test_only_one_holds_it_even_when_holders_yield() -> None:
    lock = WritersLock()
    inside = 0
    most = 0

    async def unit() -> None:
        nonlocal inside, most
        async with lock:
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)  # a holder that gives the loop up (the checkpoint's hold)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(unit() for _ in range(30)))
    assert most == 1 and inside == 0 and not lock.locked()


async def test_a_cancelled_waiter_leaves_the_others_their_turn() -> None:
    lock = WritersLock()
    await lock.acquire()
    done: list[str] = []

    async def unit(name: str) -> None:
        async with lock:
            done.append(name)

    first = asyncio.create_task(unit("first"))
    second = asyncio.create_task(unit("second"))
    await asyncio.sleep(0)
    first.cancel()
    lock.release()
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled() and done == ["second"] and not lock.locked()


async def test_releasing_a_free_lock_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="not held"):
        WritersLock().release()
