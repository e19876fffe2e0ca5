"""Timestamps are stored as integer microseconds since the Unix epoch (UTC) on every database.

Integers sort, index and compare the same on SQLite and PostgreSQL, with no timezone surprises.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return (moment - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """Integer microseconds since the epoch -> aware UTC datetime."""
    # Positional: a keyword argument doubles the cost of this call, made for every timestamp
    # of every message read.
    return EPOCH + timedelta(0, 0, value)


def maybe_from_micros(value: int | None) -> datetime | None:
    """Like :func:`from_micros`, passing ``None`` through."""
    return None if value is None else from_micros(value)


def maybe_to_micros(moment: datetime | None) -> int | None:
    """Like :func:`to_micros`, passing ``None`` through."""
    return None if moment is None else to_micros(moment)
