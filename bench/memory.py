"""S1 memory breakdown: where the server's memory per idle socket goes (``--only S1M``).

Starts a Courtyard server with ``bench/hooks`` on PYTHONPATH and ``BENCH_TRACEMALLOC`` set, takes
an allocation snapshot before and after opening N sockets (SIGUSR1), and reports the difference
per socket by source line. tracemalloc itself slows the server, so this is a separate scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

HOOKS = Path(__file__).resolve().parent / "hooks"


def tracemalloc_env(path: Path) -> dict[str, str]:
    """Environment that loads the hook in a server process."""
    python_path = os.environ.get("PYTHONPATH", "")
    return {
        "BENCH_TRACEMALLOC": str(path),
        "PYTHONPATH": f"{HOOKS}{os.pathsep}{python_path}" if python_path else str(HOOKS),
    }


def _read(path: Path) -> list[Any] | None:
    if not path.exists():
        return None
    try:
        rows: list[Any] = json.loads(path.read_text())
    except ValueError:
        return None  # still being written
    return rows


async def snapshot(pid: int, path: Path, wait: float = 60.0) -> dict[str, tuple[int, int]]:
    """Ask the server for a snapshot and read it: {site: (bytes, blocks)}."""
    path.unlink(missing_ok=True)  # noqa: ASYNC240 (a small local file)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        rows = _read(path)
        if rows is not None:
            return {site: (size, count) for size, count, site in rows}
    raise TimeoutError("no tracemalloc snapshot from the server")


def per_connection(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], connections: int
) -> dict[str, Any]:
    """Allocation growth per connection by site, largest first."""
    growth = []
    for site, (size, count) in after.items():
        old_size, old_count = before.get(site, (0, 0))
        if size - old_size > 0:
            growth.append(
                (site, (size - old_size) / connections, (count - old_count) / connections)
            )
    growth.sort(key=lambda g: -g[1])
    total = sum(g[1] for g in growth)
    return {
        "traced_bytes_per_conn": total,
        "top": [
            {"site": _short(site), "bytes": round(b), "blocks": round(c, 2)}
            for site, b, c in growth[:25]
        ],
    }


def _short(site: str) -> str:
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in site:
            return site.split(marker, 1)[1]
    return site
