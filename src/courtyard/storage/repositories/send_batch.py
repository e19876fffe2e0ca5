"""The channel and membership statements of a send batch, as SQL written once per shape.

A group-commit batch runs a fixed set of statements whatever its size: the posting rule's
rows (one statement here, two in the channel repository), the sequence reservation and the
senders' read markers. Built with SQLAlchemy's
expression language on every batch (``in_``, ``case``, ``bindparam``, then the cache-key walk)
they were ~1.5 ms of a batch's ~3 ms fixed cost on SQLite, which decides how small a batch
may be. Here the SQL text is made once per dialect and row count and goes to the driver with
plain parameters: on PostgreSQL arrays (one statement for any count), on SQLite one ``?`` per
value. The channel repository keeps the one-channel forms (``allocate_seqs``, ``next_seq``).
The statements go straight to the driver (``storage/driver.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from courtyard.domain.channels import Channel, ChannelKind, Membership
from courtyard.storage.driver import execute_many, fetch
from courtyard.storage.repositories._base import Repository
from courtyard.storage.timestamps import from_micros, maybe_from_micros, to_micros

# One statement for the channels and the senders' memberships, read by position (a named
# lookup on a result row costs about a microsecond). A channel comes once per member among
# the batch's senders, or once with no membership.
_POSTING_COLUMNS = (
    "c.id, c.kind, c.name, c.topic, c.purpose, c.created_by, c.created_at, c.archived_at, "
    "c.last_seq, c.last_message_at, c.member_count, "
    "m.user_id, m.joined_at, m.last_read_seq, m.muted, m.starred"
)
_PG_POSTING = (
    f"SELECT {_POSTING_COLUMNS} FROM channels AS c LEFT JOIN memberships AS m "  # noqa: S608
    "ON m.channel_id = c.id AND m.user_id = ANY($2::bigint[]) WHERE c.id = ANY($1::bigint[])"
)


def _channel(row: Any) -> Channel:
    return Channel(
        id=row[0],
        kind=ChannelKind(row[1]),
        name=row[2],
        topic=row[3],
        purpose=row[4],
        created_by=row[5],
        created_at=from_micros(row[6]),
        archived_at=maybe_from_micros(row[7]),
        last_seq=row[8],
        last_message_at=maybe_from_micros(row[9]),
        member_count=row[10],
    )


def _membership(row: Any) -> Membership:
    return Membership(
        channel_id=row[0],
        user_id=row[11],
        joined_at=from_micros(row[12]),
        last_read_seq=row[13],
        muted=bool(row[14]),
        starred=bool(row[15]),
    )


# Rows locked in id order first: two processes' batches sharing channels queue, not deadlock.
_PG_LOCK = "SELECT id FROM channels WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"
_PG_RESERVE = (
    "UPDATE channels AS c SET last_seq = c.last_seq + v.n, last_message_at = $3 "
    "FROM unnest($1::bigint[], $2::bigint[]) AS v(id, n) WHERE c.id = v.id "
    "RETURNING c.id, c.last_seq"
)
_PG_MARKERS = (
    "UPDATE memberships AS m SET last_read_seq = v.seq "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(channel_id, user_id, seq) "
    "WHERE m.channel_id = v.channel_id AND m.user_id = v.user_id"
)
_SQLITE_MARKERS = "UPDATE memberships SET last_read_seq = ? WHERE channel_id = ? AND user_id = ?"


def _marks(count: int) -> str:
    return ", ".join("?" * count)


@functools.lru_cache(maxsize=1024)
def _sqlite_posting(channel_count: int, user_count: int) -> str:
    return (
        f"SELECT {_POSTING_COLUMNS} FROM channels AS c LEFT JOIN memberships AS m "  # noqa: S608
        f"ON m.channel_id = c.id AND m.user_id IN ({_marks(user_count)}) "
        f"WHERE c.id IN ({_marks(channel_count)})"
    )


@functools.lru_cache(maxsize=512)
def _sqlite_reserve(count: int) -> str:
    whens = " ".join(["WHEN ? THEN ?"] * count)
    return (
        f"UPDATE channels SET last_seq = last_seq + CASE id {whens} ELSE 0 END, "  # noqa: S608
        f"last_message_at = ? WHERE id IN ({_marks(count)}) RETURNING id, last_seq"
    )


class SendBatchRepository(Repository):
    """Reads and writes of ``channels`` and ``memberships`` for a batch of sends."""

    @property
    def _postgresql(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    async def posting_views(
        self, pairs: set[tuple[int, int]]
    ) -> dict[tuple[int, int], tuple[Channel | None, Membership | None]]:
        """For (channel, user) pairs: the channel and that user's membership, in one query."""
        channel_ids = sorted({channel for channel, _ in pairs})
        user_ids = sorted({user for _, user in pairs})
        if self._postgresql:
            rows = await fetch(self.conn, _PG_POSTING, (channel_ids, user_ids))
        else:
            rows = await fetch(
                self.conn,
                _sqlite_posting(len(channel_ids), len(user_ids)),
                (*user_ids, *channel_ids),
            )
        found: dict[int, Channel] = {}
        members: dict[tuple[int, int], Membership] = {}
        for row in rows:
            channel_id = row[0]
            if channel_id not in found:
                found[channel_id] = _channel(row)
            if row[11] is not None:
                members[(channel_id, row[11])] = _membership(row)
        return {pair: (found.get(pair[0]), members.get(pair)) for pair in pairs}

    async def reserve_seqs(self, counts: dict[int, int], *, now: datetime) -> dict[int, int]:
        """Reserve ``counts[channel]`` sequence numbers per channel: channel -> last seq.

        The row locks are held until commit, so the numbers stay gap-free.
        """
        ids = sorted(counts)
        stamp = to_micros(now)
        if self._postgresql:
            if len(ids) > 1:
                await fetch(self.conn, _PG_LOCK, (ids,))
            result = await fetch(self.conn, _PG_RESERVE, (ids, [counts[i] for i in ids], stamp))
        else:
            params: list[object] = []
            for channel_id in ids:
                params += (channel_id, counts[channel_id])
            params.append(stamp)
            params += ids
            result = await fetch(self.conn, _sqlite_reserve(len(ids)), params)
        lasts: dict[int, int] = {int(row[0]): int(row[1]) for row in result}
        missing = set(ids) - lasts.keys()
        if missing:
            raise LookupError(f"channels {sorted(missing)} do not exist")
        return lasts

    async def set_read_markers(self, markers: Sequence[tuple[int, int, int]]) -> None:
        """Move several (channel, user) read markers to ``seq`` in one round trip."""
        if not markers:
            return
        if self._postgresql:
            await fetch(
                self.conn,
                _PG_MARKERS,
                ([m[0] for m in markers], [m[1] for m in markers], [m[2] for m in markers]),
            )
        else:
            await execute_many(
                self.conn, _SQLITE_MARKERS, [(seq, channel, user) for channel, user, seq in markers]
            )
