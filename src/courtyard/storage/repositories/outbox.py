"""The event outbox: durable events written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime

import msgspec

from courtyard.domain.events import Audience, Event
from courtyard.storage.driver import fetch
from courtyard.storage.repositories._base import Repository, dump_ids
from courtyard.storage.repositories.bulk import insert_returning_ids
from courtyard.storage.repositories.events import StoredEvent
from courtyard.storage.schema import membership_changes
from courtyard.storage.timestamps import to_micros

_encoder = msgspec.json.Encoder()

_EVENT_COLUMNS = (
    "created_at",
    "type",
    "channel_id",
    "user_ids",
    "all_members",
    "joined",
    "left",
    "payload",
)
_EVENT_PG_TYPES = ("bigint", "varchar", "bigint", "text", "boolean", "text", "text", "bytea")

# Any constant works; it only has to be the same in every process that writes events.
_OUTBOX_LOCK_KEY = 7_411_211_001
_LOCK_SQL = f"SELECT pg_advisory_xact_lock({_OUTBOX_LOCK_KEY})"


def _ids_or_none(ids: tuple[int, ...]) -> str | None:
    return dump_ids(list(ids)) if ids else None


class Outbox(Repository):
    """Collects a transaction's events and writes them just before commit.

    On PostgreSQL the writes take a transaction-scoped advisory lock, so stream positions
    become visible in commit order: once a reader sees position N, every position below N is
    either visible or never will be. Writing last keeps that lock short. SQLite's single writer
    gives the same guarantee.
    """

    __slots__ = ("_dialect", "_pending")

    def __init__(self, conn: object, dialect: str) -> None:
        super().__init__(conn)  # type: ignore[arg-type]
        self._dialect = dialect
        # (type, stored JSON, audience) of each queued event, in order.
        self._pending: list[tuple[str, bytes, Audience]] = []

    def append(self, event: Event, audience: Audience) -> None:
        """Queue an event for this transaction."""
        self._pending.append(
            (str(type(event).__struct_config__.tag), _encoder.encode(event), audience)
        )

    def append_encoded(self, event_type: str, payload: bytes, audience: Audience) -> None:
        """Queue an event already encoded by the caller: ``payload`` must be exactly the JSON
        :meth:`append` would store for it (msgspec's encoding of the event struct)."""
        self._pending.append((event_type, payload, audience))

    async def flush(self, *, now: datetime) -> list[StoredEvent]:
        """Write the queued events; returns them with their stream positions."""
        if not self._pending:
            return []
        if self._dialect == "postgresql":
            await fetch(self.conn, _LOCK_SQL)
        stamp = to_micros(now)
        pending = self._pending
        positions = await insert_returning_ids(
            self.conn,
            "events",
            _EVENT_COLUMNS,
            _EVENT_PG_TYPES,
            [
                (
                    stamp,
                    tag,
                    audience.channel_id,
                    _ids_or_none(audience.user_ids),
                    audience.all_members,
                    _ids_or_none(audience.joined),
                    _ids_or_none(audience.left),
                    payload,
                )
                for tag, payload, audience in pending
            ],
            returning="position",
        )
        stored = [
            StoredEvent(
                position,
                tag,
                audience.channel_id,
                audience.user_ids,
                audience.all_members,
                audience.joined,
                audience.left,
                payload,
            )
            for position, (tag, payload, audience) in zip(positions, pending, strict=True)
        ]
        changes = [
            {
                "position": event.position,
                "user_id": user_id,
                "channel_id": event.channel_id,
                "joined": joined,
            }
            for event in stored
            if event.channel_id is not None
            for joined, users in ((True, event.joined), (False, event.left))
            for user_id in users
        ]
        if changes:
            await self.conn.execute(membership_changes.insert(), changes)
        self._pending.clear()
        return stored
