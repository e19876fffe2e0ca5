"""Replaying missed events to one connection, exactly as if it had stayed connected.

The replay applies the same audience rules as live delivery (``Hub.dispatch``), with the
user's channel membership reconstructed as it was at each position: membership now, with every
later join and leave undone, then re-applied event by event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from courtyard.realtime.connection import Connection
from courtyard.realtime.wire import event_frame
from courtyard.storage.repositories.events import StoredEvent
from courtyard.storage.unit_of_work import Storage

BATCH = 500


@dataclass
class ReplayCursor:
    """Where a connection's replay stands: position reached and membership at that position."""

    position: int
    channels: set[int]


def visible(event: StoredEvent, user_id: int, is_guest: bool, channels: set[int]) -> bool:
    """The live audience rule, for one user whose membership (joins applied) is ``channels``."""
    if event.channel_id is not None and event.channel_id in channels:
        return True
    if user_id in event.user_ids or user_id in event.left:
        return True
    return event.all_members and not is_guest


async def prepare(
    storage: Storage, gate: asyncio.Semaphore, user_id: int, since: int | None, current: int
) -> tuple[ReplayCursor, str | None]:
    """Where a connection's replay starts, and why it must resync (None if it need not).

    One statement reads the log's bounds, the user's channels now and their membership
    changes since the earliest possible start, so the membership at the start position is
    exact; it needs no transaction (``consistent=False``).
    """
    earliest = current if since is None else min(since, current)
    async with gate, storage.snapshot(consistent=False) as uow:
        found = await uow.events.replay_start(user_id, max(earliest, 0))
    newest = max(found.newest, current)
    start = current if since is None else since
    reason = None
    if since is not None and since > newest:
        reason = "position is ahead of the stream"
    elif since is not None and found.oldest and since < found.oldest - 1:
        reason = "position is older than the retention window"
    if reason is not None:
        start = current
    channels = found.channels
    for position, channel_id, joined in reversed(found.changes):
        if position <= start:
            break
        if joined:
            channels.discard(channel_id)
        else:
            channels.add(channel_id)
    return ReplayCursor(position=start, channels=channels), reason


async def replay_until(
    storage: Storage, gate: asyncio.Semaphore, conn: Connection, cursor: ReplayCursor, target: int
) -> None:
    """Send every event in ``(cursor.position, target]`` the user may see; advances ``cursor``.

    ``gate`` bounds how many connections read the database at once (a reconnect storm must
    queue, not exhaust the connection pool); it is released while waiting for the client.
    """
    while cursor.position < target and not conn.closed:
        async with gate, storage.snapshot() as uow:
            batch = await uow.events.read_after(cursor.position, until=target, limit=BATCH)
        for event in batch:
            channel_id = event.channel_id
            if channel_id is not None and conn.user_id in event.joined:
                cursor.channels.add(channel_id)
            if visible(event, conn.user_id, conn.is_guest, cursor.channels):
                conn.write(event_frame(event.position, event.payload))
            if channel_id is not None and conn.user_id in event.left:
                cursor.channels.discard(channel_id)
            cursor.position = event.position
        if len(batch) < BATCH:
            cursor.position = target
        await conn.drained()
