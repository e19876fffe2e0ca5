"""What `courtyard serve` does to the process at start-up (app.py): the start-up heap frozen
out of the collector's walks, and a young generation large enough that a request's objects are
freed by reference counting before a collection walks them."""

from __future__ import annotations

import gc
import logging
import time

import pytest

from courtyard.app import (
    _GC_THRESHOLDS,
    SLOW_COLLECTION_SECONDS,
    _CollectionWatch,
    _freeze_startup_objects,
)


async def test_serve_start_up_freezes_the_heap_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    callbacks = list(gc.callbacks)
    try:
        await _freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == _GC_THRESHOLDS
        assert _GC_THRESHOLDS[0] >= 10_000
        assert len(gc.callbacks) == len(callbacks) + 1  # the pause watch
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        gc.callbacks[:] = callbacks


def test_a_long_collection_pause_is_logged_and_a_short_one_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = _CollectionWatch()
    with caplog.at_level(logging.WARNING, logger="courtyard.app"):
        watch.on_collection("start", {"generation": 0})
        watch.on_collection("stop", {"generation": 0, "collected": 3})
        assert not caplog.records
        watch.on_collection("start", {"generation": 2})
        time.sleep(SLOW_COLLECTION_SECONDS * 1.5)
        watch.on_collection("stop", {"generation": 2, "collected": 7})
    [record] = caplog.records
    assert "generation 2 paused the process" in record.getMessage()
    assert "7 objects freed" in record.getMessage()
