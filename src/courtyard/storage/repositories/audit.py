"""The audit log: append-only, hash-chained entries (see courtyard.domain.audit).

Entries are queued by the unit of work and written just before commit, after taking a lock
that serialises every appender (PostgreSQL: a transaction-scoped advisory lock; SQLite: the
single writer's ``BEGIN IMMEDIATE``), so each new entry links to the true latest one and the
chain never forks. Writing last keeps that lock short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, Select, select, text

from courtyard.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditQuery,
    Details,
    canonical_details,
    chain_hash,
)
from courtyard.storage.repositories._base import Repository
from courtyard.storage.schema import audit_log
from courtyard.storage.timestamps import from_micros, to_micros

# Any constant works; it only has to be the same in every process that appends.
_AUDIT_LOCK_KEY = 7_411_211_002


@dataclass(frozen=True, slots=True)
class NewAuditEntry:
    """An entry waiting for its transaction to commit."""

    time: datetime
    actor_id: int | None
    actor: str
    ip: str
    user_agent: str
    action: str
    target: str
    outcome: str
    details: Details


@dataclass(frozen=True, slots=True)
class StoredAuditRow:
    """A row exactly as stored (details as its canonical JSON text), for verification."""

    id: int
    created_at: int
    actor_id: int | None
    actor: str
    ip: str
    user_agent: str
    action: str
    target: str
    outcome: str
    details: str
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        """The hash this row should carry given its fields and its ``prev_hash``."""
        return chain_hash(
            entry_id=self.id,
            time_micros=self.created_at,
            actor_id=self.actor_id,
            actor=self.actor,
            ip=self.ip,
            user_agent=self.user_agent,
            action=self.action,
            target=self.target,
            outcome=self.outcome,
            details_json=self.details,
            prev_hash=self.prev_hash,
        )


def _stored(row: Row[Any]) -> StoredAuditRow:
    return StoredAuditRow(
        id=int(row.id),
        created_at=int(row.created_at),
        actor_id=None if row.actor_id is None else int(row.actor_id),
        actor=row.actor,
        ip=row.ip,
        user_agent=row.user_agent,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _entry(row: Row[Any]) -> AuditEntry:
    try:
        details = orjson.loads(row.details)
    except orjson.JSONDecodeError:
        details = {"unreadable_details": str(row.details)[:200]}
    return AuditEntry(
        id=int(row.id),
        time=from_micros(int(row.created_at)),
        actor_id=None if row.actor_id is None else int(row.actor_id),
        actor=row.actor,
        ip=row.ip,
        user_agent=row.user_agent,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        details=details if isinstance(details, dict) else {"value": str(details)[:200]},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@dataclass(slots=True)
class _Pending:
    entries: list[NewAuditEntry] = field(default_factory=list)


class AuditRepository(Repository):
    """Queues a transaction's audit entries, appends them at commit, and reads the log."""

    __slots__ = ("_dialect", "_pending")

    def __init__(self, conn: object, dialect: str) -> None:
        super().__init__(conn)  # type: ignore[arg-type]
        self._dialect = dialect
        self._pending = _Pending()

    def append(self, entry: NewAuditEntry) -> None:
        """Queue an entry for this transaction."""
        self._pending.entries.append(entry)

    @property
    def pending(self) -> list[NewAuditEntry]:
        """Entries queued so far."""
        return list(self._pending.entries)

    async def flush(self) -> None:
        """Append the queued entries to the chain (call last in the transaction)."""
        entries = self._pending.entries
        if not entries:
            return
        if self._dialect == "postgresql":
            await self.conn.execute(text(f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK_KEY})"))
        last = (
            await self.conn.execute(
                select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
            )
        ).first()
        next_id = int(last.id) + 1 if last else 1
        prev_hash = str(last.hash) if last else GENESIS_HASH
        rows = []
        for entry in entries:
            details_json = canonical_details(entry.details)
            micros = to_micros(entry.time)
            digest = chain_hash(
                entry_id=next_id,
                time_micros=micros,
                actor_id=entry.actor_id,
                actor=entry.actor,
                ip=entry.ip,
                user_agent=entry.user_agent,
                action=entry.action,
                target=entry.target,
                outcome=entry.outcome,
                details_json=details_json,
                prev_hash=prev_hash,
            )
            rows.append(
                {
                    "id": next_id,
                    "created_at": micros,
                    "actor_id": entry.actor_id,
                    "actor": entry.actor,
                    "ip": entry.ip,
                    "user_agent": entry.user_agent,
                    "action": entry.action,
                    "target": entry.target,
                    "outcome": entry.outcome,
                    "details": details_json,
                    "prev_hash": prev_hash,
                    "hash": digest,
                }
            )
            next_id += 1
            prev_hash = digest
        await self.conn.execute(audit_log.insert(), rows)
        entries.clear()

    def _filtered(self, query: AuditQuery) -> Select[Any]:
        statement = select(audit_log)
        if query.actor_id is not None:
            statement = statement.where(audit_log.c.actor_id == query.actor_id)
        if query.action is not None:
            statement = statement.where(audit_log.c.action == query.action)
        if query.outcome is not None:
            statement = statement.where(audit_log.c.outcome == query.outcome)
        if query.since is not None:
            statement = statement.where(audit_log.c.created_at >= to_micros(query.since))
        if query.until is not None:
            statement = statement.where(audit_log.c.created_at < to_micros(query.until))
        return statement

    async def page(self, query: AuditQuery, *, before: int | None, limit: int) -> list[AuditEntry]:
        """Newest first, entries with ids below ``before``."""
        statement = self._filtered(query)
        if before is not None:
            statement = statement.where(audit_log.c.id < before)
        result = await self.conn.execute(statement.order_by(audit_log.c.id.desc()).limit(limit))
        return [_entry(row) for row in result]

    async def batches(self, query: AuditQuery, *, size: int) -> AsyncIterator[list[AuditEntry]]:
        """Every matching entry, oldest first, ``size`` at a time."""
        after = 0
        while True:
            statement = self._filtered(query).where(audit_log.c.id > after)
            result = await self.conn.execute(statement.order_by(audit_log.c.id).limit(size))
            rows = [_entry(row) for row in result]
            if not rows:
                return
            yield rows
            after = rows[-1].id

    async def stored_after(self, after: int, *, limit: int) -> list[StoredAuditRow]:
        """Rows as stored, in id order, for verifying the chain."""
        result = await self.conn.execute(
            select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
        )
        return [_stored(row) for row in result]

    async def count(self) -> int:
        """How many entries the log holds."""
        result = await self.conn.execute(text("SELECT count(*) FROM audit_log"))
        return int(result.scalar_one())
