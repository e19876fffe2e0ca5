"""What `courtyard serve` does to the process at start-up (app.py): the start-up heap frozen
out of the collector's walks, and a young generation large enough that a request's objects are
freed by reference counting before a collection walks them."""

from __future__ import annotations

import gc

from courtyard.app import _GC_THRESHOLDS, _freeze_startup_objects


async def test_serve_start_up_freezes_the_heap_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        await _freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == _GC_THRESHOLDS
        assert _GC_THRESHOLDS[0] >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
