"""The sequencer delivers every committed event once, in position order, whatever the bus does."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from courtyard.realtime.sequencer import Sequencer
from courtyard.storage.repositories.events import StoredEvent


def _event(position: int) -> StoredEvent:
    return StoredEvent(position, "message.created", 1, (), False, (), (), b"{}")


class _Log:
    """Stands in for the events table: committed positions, some of them holes."""

    def __init__(self, committed: set[int]) -> None:
        self.committed = committed
        self.reads = 0

    async def fetch(self, after: int, until: int, limit: int) -> list[StoredEvent]:
        self.reads += 1
        found = [p for p in sorted(self.committed) if after < p <= until]
        return [_event(p) for p in found[:limit]]


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=60),
    holes=st.sets(st.integers(min_value=1, max_value=60), max_size=10),
    seed=st.integers(min_value=0, max_value=10_000),
    drop=st.floats(min_value=0.0, max_value=0.5),
)
async def test_delivers_each_committed_event_once_in_order_despite_loss_and_reordering(
    total: int, holes: set[int], seed: int, drop: float
) -> None:
    rng = random.Random(seed)
    committed = {p for p in range(1, total + 1) if p not in holes} or {total}
    log = _Log(committed)
    delivered: list[int] = []
    sequencer = Sequencer(lambda e: delivered.append(e.position), log.fetch)
    arriving = [p for p in sorted(committed) if rng.random() >= drop]
    rng.shuffle(arriving)
    duplicates = rng.sample(arriving, k=min(3, len(arriving)))
    for position in arriving + duplicates:
        sequencer.receive([_event(position)])
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    await sequencer.catch_up_to(max(committed))
    for _ in range(50):
        if sequencer.position >= max(committed) and sequencer._repair is None:
            break
        await asyncio.sleep(0)
    assert delivered == sorted(committed)


async def test_in_order_stream_needs_no_database_reads() -> None:
    log = _Log(set(range(1, 101)))
    delivered: list[int] = []
    sequencer = Sequencer(lambda e: delivered.append(e.position), log.fetch)
    for position in range(1, 101):
        sequencer.receive([_event(position)])
    await asyncio.sleep(0)
    assert delivered == list(range(1, 101))
    assert log.reads == 0


async def test_gap_is_repaired_from_the_database() -> None:
    log = _Log({1, 2, 3, 4})
    delivered: list[int] = []
    sequencer = Sequencer(lambda e: delivered.append(e.position), log.fetch)
    sequencer.receive([_event(1), _event(4)])
    for _ in range(20):
        await asyncio.sleep(0)
    assert delivered == [1, 2, 3, 4]
    assert log.reads >= 1
