"""The event outbox: durable events written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import text

from courtyard.domain.events import Audience, Event
from courtyard.storage.repositories._base import Repository, dump_ids
from courtyard.storage.schema import events
from courtyard.storage.timestamps import to_micros

_encoder = msgspec.json.Encoder()

# Any constant works; it only has to be the same in every process that writes events.
_OUTBOX_LOCK_KEY = 7_411_211_001


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event waiting for its transaction to commit."""

    event: Event
    audience: Audience


class Outbox(Repository):
    """Collects a transaction's events and writes them just before commit.

    On PostgreSQL the writes take a transaction-scoped advisory lock, so stream positions
    become visible in commit order: a reader that sees position N has seen everything below N.
    Writing last keeps that lock short. SQLite has a single writer, which gives the same.
    """

    __slots__ = ("_dialect", "_pending")

    def __init__(self, conn: object, dialect: str) -> None:
        super().__init__(conn)  # type: ignore[arg-type]
        self._dialect = dialect
        self._pending: list[PendingEvent] = []

    def append(self, event: Event, audience: Audience) -> None:
        """Queue an event for this transaction."""
        self._pending.append(PendingEvent(event, audience))

    @property
    def pending(self) -> list[PendingEvent]:
        """Events queued so far (for tests and after-commit hooks)."""
        return list(self._pending)

    async def flush(self, *, now: datetime) -> int:
        """Write the queued events; returns how many were written."""
        if not self._pending:
            return 0
        if self._dialect == "postgresql":
            await self.conn.execute(text(f"SELECT pg_advisory_xact_lock({_OUTBOX_LOCK_KEY})"))
        stamp = to_micros(now)
        await self.conn.execute(
            events.insert(),
            [
                {
                    "created_at": stamp,
                    "type": type(item.event).__struct_config__.tag,
                    "channel_id": item.audience.channel_id,
                    "user_ids": dump_ids(list(item.audience.user_ids))
                    if item.audience.user_ids
                    else None,
                    "all_members": item.audience.all_members,
                    "payload": _encoder.encode(item.event),
                }
                for item in self._pending
            ],
        )
        written = len(self._pending)
        self._pending.clear()
        return written
