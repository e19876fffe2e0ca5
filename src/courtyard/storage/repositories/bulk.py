"""Multi-row ``INSERT … RETURNING`` for the hottest inserts of the send path.

SQLAlchemy's ``executemany`` with ``RETURNING`` processes every parameter of every row in
Python (``construct_params``, the insertmanyvalues batching): 5-12 % of the server's CPU per
message in S6. These statements are plain column lists of already-converted values, so the
SQL is written once per shape and the rows go to the driver as they are: on PostgreSQL one
array per column through ``unnest`` (one prepared statement for any batch size), on SQLite
one ``VALUES`` list per batch size; straight to the driver (``storage/driver.py``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from courtyard.storage.driver import fetch

#: SQLite allows 32,766 variables per statement; rows per statement stay well below.
_SQLITE_ROWS = 500


async def insert_returning_ids(
    conn: AsyncConnection,
    table: str,
    columns: tuple[str, ...],
    pg_types: tuple[str, ...],
    rows: Sequence[Sequence[object]],
    returning: str = "id",
) -> list[int]:
    """Insert ``rows`` (values in ``columns`` order); their new ids, in the rows' order."""
    if not rows:
        return []
    ids: list[int] = []
    if conn.dialect.name == "postgresql":
        sql = _postgresql_sql(table, columns, pg_types, returning)
        result = await fetch(conn, sql, [list(column) for column in zip(*rows, strict=True)])
        ids = [int(row[0]) for row in result]
    else:
        for start in range(0, len(rows), _SQLITE_ROWS):
            chunk = rows[start : start + _SQLITE_ROWS]
            sql = _sqlite_sql(table, columns, len(chunk), returning)
            result = await fetch(conn, sql, tuple(itertools.chain.from_iterable(chunk)))
            ids.extend(int(row[0]) for row in result)
    if len(ids) != len(rows):
        raise RuntimeError(f"inserted {len(rows)} rows into {table} but {len(ids)} ids came back")
    # RETURNING promises no order; ids do: one statement holding the table's write lock (the
    # outbox's advisory lock on PostgreSQL) takes ascending ids in the order rows are produced,
    # which is VALUES / unnest order. The same assumption as SQLAlchemy's sort_by_parameter_order.
    ids.sort()
    return ids


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


@functools.lru_cache(maxsize=64)
def _postgresql_sql(
    table: str, columns: tuple[str, ...], pg_types: tuple[str, ...], returning: str
) -> str:
    # Names and types are constants of the calling repository, never input.
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(pg_types, start=1))
    return (
        f'INSERT INTO "{table}" ({_quoted(columns)}) SELECT * FROM unnest({arrays}) '  # noqa: S608
        f'RETURNING "{returning}"'
    )


@functools.lru_cache(maxsize=1024)
def _sqlite_sql(table: str, columns: tuple[str, ...], count: int, returning: str) -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    return (
        f'INSERT INTO "{table}" ({_quoted(columns)}) VALUES {", ".join([row] * count)} '  # noqa: S608
        f'RETURNING "{returning}"'
    )
