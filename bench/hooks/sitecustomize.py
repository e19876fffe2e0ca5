"""Bench-only start-up hook for server processes (never installed; only put on PYTHONPATH).

With ``BENCH_TRACEMALLOC=<path>`` in the environment, the process starts tracemalloc and, on
SIGUSR1, writes the current allocations grouped by source line to ``<path>`` as JSON
(``[[size_bytes, count, "file:line"], ...]``). ``bench.run --memory`` uses it to break S1's
memory per connection down by allocation site, without changing Courtyard.

With ``BENCH_CPROFILE=<path>``, the first SIGUSR2 starts cProfile on the main thread and the
second stops it and writes its statistics to ``<path>`` (``pstats`` format). cProfile counts every
call, which a sampling profiler cannot: ``bench.lone_sends --cprofile`` uses it to say how many
Python calls one request makes and where they go.
"""

from __future__ import annotations

import os

_target = os.environ.get("BENCH_TRACEMALLOC")
if _target:
    import json
    import signal
    import tracemalloc

    tracemalloc.start(1)

    def _dump(signum: int, frame: object) -> None:
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("lineno")
        rows = [
            [s.size, s.count, f"{s.traceback[0].filename}:{s.traceback[0].lineno}"]
            for s in stats[:3000]
        ]
        with open(_target, "w") as fh:
            json.dump(rows, fh)

    signal.signal(signal.SIGUSR1, _dump)

_cprofile_target = os.environ.get("BENCH_CPROFILE")
if _cprofile_target:
    import cProfile
    import signal

    _profiler = cProfile.Profile()
    _profiling = [False]

    def _toggle(signum: int, frame: object) -> None:
        if not _profiling[0]:
            _profiling[0] = True
            _profiler.enable()
            return
        _profiler.disable()
        _profiling[0] = False
        _profiler.dump_stats(_cprofile_target)

    signal.signal(signal.SIGUSR2, _toggle)
