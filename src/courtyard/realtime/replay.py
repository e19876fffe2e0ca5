"""Replaying missed events to one connection, exactly as if it had stayed connected.

The replay applies the same audience rules as live delivery (``Hub.dispatch``), with the
user's channel membership reconstructed as it was at each position: membership now, with every
later join and leave undone, then re-applied event by event.
"""

from __future__ import annotations

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


class ResyncRequired(Exception):
    """The client's position is outside the retained log; it must refetch over REST."""


def visible(event: StoredEvent, user_id: int, is_guest: bool, channels: set[int]) -> bool:
    """The live audience rule, for one user whose membership (joins applied) is ``channels``."""
    if event.channel_id is not None and event.channel_id in channels:
        return True
    if user_id in event.user_ids or user_id in event.left:
        return True
    return event.all_members and not is_guest


async def start_cursor(storage: Storage, user_id: int, position: int) -> ReplayCursor:
    """The user's membership as of ``position`` (which must be within the retained log)."""
    async with storage.snapshot() as uow:
        current = {channel.id for channel, _ in await uow.channels.channels_of(user_id)}
        changes = await uow.events.membership_changes_after(user_id, position)
    channels = set(current)
    for _, channel_id, joined in reversed(changes):
        if joined:
            channels.discard(channel_id)
        else:
            channels.add(channel_id)
    return ReplayCursor(position=position, channels=channels)


async def check_resumable(storage: Storage, since: int, newest_known: int) -> None:
    """Raise ResyncRequired when events after ``since`` are no longer (or never were) kept."""
    async with storage.snapshot() as uow:
        oldest, newest = await uow.events.bounds()
    newest = max(newest, newest_known)
    if since > newest:
        raise ResyncRequired("position is ahead of the stream")
    if oldest and since < oldest - 1:
        raise ResyncRequired("position is older than the retention window")


async def replay_until(
    storage: Storage, conn: Connection, cursor: ReplayCursor, target: int
) -> None:
    """Send every event in ``(cursor.position, target]`` the user may see; advances ``cursor``."""
    while cursor.position < target and not conn.closed:
        async with storage.snapshot() as uow:
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
