"""Reading the event log (the outbox table) for replay, gap repair and pruning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, bindparam, delete, func, select

from courtyard.storage.driver import Portable, fetch
from courtyard.storage.repositories._base import Repository, load_ids
from courtyard.storage.schema import events, membership_changes
from courtyard.storage.timestamps import to_micros


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A committed durable event with its stream position; ``payload`` is the event's JSON."""

    position: int
    type: str
    channel_id: int | None
    user_ids: tuple[int, ...]
    all_members: bool
    joined: tuple[int, ...]
    left: tuple[int, ...]
    payload: bytes


def stored_event(row: Row[Any]) -> StoredEvent:
    """Build a StoredEvent from an ``events`` row."""
    return StoredEvent(
        position=row.position,
        type=row.type,
        channel_id=row.channel_id,
        user_ids=tuple(load_ids(row.user_ids)),
        all_members=bool(row.all_members),
        joined=tuple(load_ids(row.joined)),
        left=tuple(load_ids(row.left)),
        payload=bytes(row.payload),
    )


@dataclass(frozen=True, slots=True)
class ReplayStart:
    """What a replay starts from: the log's bounds, the user's channels now, and their
    membership changes after a position, as ``(position, channel_id, joined)`` ascending."""

    oldest: int
    newest: int
    channels: set[int]
    changes: list[tuple[int, int, bool]]


class EventLogRepository(Repository):
    """Reads of the event log."""

    async def replay_start(self, user_id: int, after: int) -> ReplayStart:
        """The log's bounds, ``user_id``'s channels and their membership changes after
        ``after``, read by one statement: one snapshot even outside a transaction."""
        oldest = newest = 0
        channels: set[int] = set()
        changes: list[tuple[int, int, bool]] = []
        for kind, first, second, joined in await fetch(self.conn, _REPLAY_START, (user_id, after)):
            if kind == 0:
                oldest, newest = int(first or 0), int(second or 0)
            elif kind == 1:
                channels.add(int(first))
            else:
                changes.append((int(first), int(second), bool(joined)))
        changes.sort()
        return ReplayStart(oldest, newest, channels, changes)

    async def read_after(self, position: int, *, until: int, limit: int) -> list[StoredEvent]:
        """Events with ``position < p <= until``, ascending, at most ``limit``."""
        rows = await self.conn.execute(
            _READ_AFTER, {"position": position, "until": until, "limit": limit}
        )
        return [stored_event(row) for row in rows]

    async def bounds(self) -> tuple[int, int]:
        """(oldest, newest) position kept; (0, 0) when the log is empty."""
        row = (await fetch(self.conn, _BOUNDS))[0]
        return (int(row[0] or 0), int(row[1] or 0))

    async def prune_before(self, cutoff: datetime) -> int:
        """Delete events older than ``cutoff``, always keeping the newest; returns how many."""
        newest = select(func.max(events.c.position)).scalar_subquery()
        oldest_kept = (
            await self.conn.execute(
                select(func.min(events.c.position)).where(
                    (events.c.created_at >= to_micros(cutoff)) | (events.c.position == newest)
                )
            )
        ).scalar_one_or_none()
        if oldest_kept is None:
            return 0
        result = await self.conn.execute(delete(events).where(events.c.position < oldest_kept))
        await self.conn.execute(
            delete(membership_changes).where(membership_changes.c.position < oldest_kept)
        )
        return int(result.rowcount or 0)


# Statements built once: these run on every event-socket handshake and replay batch.
_READ_AFTER = (
    select(events)
    .where(events.c.position > bindparam("position"), events.c.position <= bindparam("until"))
    .order_by(events.c.position)
    # Written into the SQL (one prepared statement per batch size): PostgreSQL keeps a
    # generic plan instead of re-planning each batch.
    .limit(bindparam("limit", type_=Integer, literal_execute=True))
)
# A handshake's reads in one statement (the bounds, the channels, the membership changes),
# told apart by the first column and sent straight to the driver (storage/driver.py): a
# statement reads one snapshot by itself, so the handshake needs no transaction around it
# (docs/adr/0021).
_REPLAY_START = Portable.of(
    "SELECT 0, (SELECT min(position) FROM events), (SELECT max(position) FROM events), 0 "
    "UNION ALL SELECT 1, channel_id, 0, 0 FROM memberships WHERE user_id = $1 "
    "UNION ALL SELECT 2, position, channel_id, CASE WHEN joined THEN 1 ELSE 0 END "
    "FROM membership_changes WHERE user_id = $1 AND position > $2"
)
# Two scalar subqueries, not ``SELECT min(position), max(position)``: SQLite answers a lone
# min() or max() from the primary key in one step but scans the whole table for the pair
# (10.8 ms at 200k events, on every event-socket handshake).
_BOUNDS = Portable.of(
    "SELECT (SELECT min(position) FROM events), (SELECT max(position) FROM events)"
)
