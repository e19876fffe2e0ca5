"""What an empty unit of work costs: ``Database.write()`` / ``read()`` around one statement.

The fixed cost every request pays for its transaction (pool checkout, BEGIN, COMMIT, return),
through ``courtyard.storage.engine.Database`` on the loop thread (uvloop), in µs of CPU.

    .venv/bin/python -m bench.transactions sqlite:////tmp/probe.db
    .venv/bin/python -m bench.transactions postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import time

import uvloop

from courtyard.storage import driver
from courtyard.storage.engine import Database


async def run(url: str, count: int) -> None:
    database = Database(url)
    try:
        for kind in ("write", "read"):
            for attempt in ("warm-up", "measured"):
                started = time.thread_time()
                for _ in range(count):
                    unit = database.write() if kind == "write" else database.read()
                    async with unit as conn:
                        await driver.fetch(conn, "SELECT 1")
                if attempt == "measured":
                    cost = (time.thread_time() - started) / count * 1e6
                    print(f"{kind}: {cost:,.0f} µs of CPU per unit of work")
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="sqlite:///PATH or postgresql://…")
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    uvloop.run(run(args.url, args.count))


if __name__ == "__main__":
    main()
