"""Bench-only start-up hook for server processes (never installed; only put on PYTHONPATH).

With ``BENCH_TRACEMALLOC=<path>`` in the environment, the process starts tracemalloc and, on
SIGUSR1, writes the current allocations grouped by source line to ``<path>`` as JSON
(``[[size_bytes, count, "file:line"], ...]``). ``bench.run --memory`` uses it to break S1's
memory per connection down by allocation site, without changing Courtyard.
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
