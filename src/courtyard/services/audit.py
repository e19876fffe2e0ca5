"""The audit trail: recording security-relevant events, querying, exporting and verifying.

Other code records with one call::

    services.audit.record(actor, "user.role_changed", target=f"user:{id}", details={...})

or, inside a service's own transaction (preferred: the entry commits with the change)::

    note(uow, ctx, actor, "user.role_changed", target=...)

The acting user's address and user agent come from the ``Actor`` the API built for the
request; pass ``ip``/``user_agent`` when there is no actor (a failed sign-in). Details never
hold passwords, tokens, secrets or message text: :func:`courtyard.domain.audit.clean_details`
drops such keys whatever the caller passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from courtyard.domain.audit import AuditEntry, AuditQuery, Details, clean_details
from courtyard.domain.errors import InvalidInput
from courtyard.domain.users import Actor
from courtyard.services.access import require_admin
from courtyard.services.context import ServiceContext
from courtyard.storage.repositories.audit import NewAuditEntry
from courtyard.storage.unit_of_work import UnitOfWork

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"
OUTCOMES = frozenset({SUCCESS, FAILURE, DENIED})

_MAX_ACTION = 64


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of entries, newest first, and the cursor for the next (older) page."""

    entries: list[AuditEntry]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of walking the chain: how many entries, and the first broken one if any."""

    checked: int
    broken_id: int | None = None
    problem: str = ""
    head_hash: str = ""

    @property
    def intact(self) -> bool:
        """Whether every entry links to its predecessor and matches its hash."""
        return self.broken_id is None


def new_entry(
    ctx: ServiceContext,
    actor: Actor | None,
    action: str,
    *,
    target: str = "",
    outcome: str = SUCCESS,
    ip: str | None = None,
    user_agent: str | None = None,
    details: Details | None = None,
) -> NewAuditEntry:
    """An entry stamped with the service clock."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    return NewAuditEntry(
        time=ctx.clock(),
        actor_id=actor.user_id if actor else None,
        actor=actor.username[:64] if actor else "",
        ip=(ip if ip is not None else (actor.ip if actor else ""))[:64],
        user_agent=(user_agent if user_agent is not None else (actor.user_agent if actor else ""))[
            :256
        ],
        action=action[:_MAX_ACTION],
        target=target[:128],
        outcome=outcome,
        details=clean_details(details),
    )


def note(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor | None,
    action: str,
    *,
    target: str = "",
    outcome: str = SUCCESS,
    ip: str | None = None,
    user_agent: str | None = None,
    details: Details | None = None,
) -> None:
    """Record an event in an open transaction: it is appended only if the transaction commits."""
    uow.audit.append(
        new_entry(
            ctx,
            actor,
            action,
            target=target,
            outcome=outcome,
            ip=ip,
            user_agent=user_agent,
            details=details,
        )
    )


class Audit:
    """The audit trail as a service."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def record(
        self,
        actor: Actor | None,
        action: str,
        *,
        target: str = "",
        outcome: str = SUCCESS,
        ip: str | None = None,
        user_agent: str | None = None,
        details: Details | None = None,
    ) -> None:
        """Append one entry in its own transaction."""
        async with self._ctx.storage.transaction() as uow:
            note(
                uow,
                self._ctx,
                actor,
                action,
                target=target,
                outcome=outcome,
                ip=ip,
                user_agent=user_agent,
                details=details,
            )

    async def list_entries(
        self, actor: Actor, query: AuditQuery, *, before: int | None, limit: int
    ) -> AuditPage:
        """A page of the log for an administrator, newest first."""
        require_admin(actor)
        _check_query(query)
        limit = max(1, min(limit, self._ctx.policy.max_page_size))
        async with self._ctx.storage.snapshot() as uow:
            entries = await uow.audit.page(query, before=before, limit=limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        return AuditPage(entries=entries, next_before=entries[-1].id if more and entries else None)

    async def export(
        self, query: AuditQuery, *, batch: int = 1000
    ) -> AsyncIterator[list[AuditEntry]]:
        """Every matching entry, oldest first, in batches (command line: the operator)."""
        _check_query(query)
        async with self._ctx.storage.snapshot(heavy=True) as uow:
            async for rows in uow.audit.batches(query, size=batch):
                yield rows

    async def count(self) -> int:
        """How many entries the log holds."""
        async with self._ctx.storage.snapshot() as uow:
            return await uow.audit.count()

    async def verify(
        self, *, progress: Callable[[int], None] | None = None, batch: int = 2000
    ) -> ChainReport:
        """Walk the chain from the first entry; report the first entry that does not hold.

        Catches an edited field (the entry's hash no longer matches), a deleted entry (the
        next one's ``prev_hash`` or id does not follow) and reordered entries (both). Removing
        entries from the end leaves a shorter valid chain: compare ``head_hash`` with a copy
        kept elsewhere (docs/security.md).
        """
        from courtyard.domain.audit import GENESIS_HASH

        prev_hash = GENESIS_HASH
        prev_id = 0
        checked = 0
        async with self._ctx.storage.snapshot(heavy=True) as uow:
            while True:
                rows = await uow.audit.stored_after(prev_id, limit=batch)
                if not rows:
                    break
                for row in rows:
                    problem = ""
                    if row.id != prev_id + 1:
                        problem = f"entry {prev_id + 1} is missing (ids jump to {row.id})"
                    elif row.prev_hash != prev_hash:
                        problem = "prev_hash does not match the previous entry's hash"
                    elif row.expected_hash() != row.hash:
                        problem = "the entry's contents do not match its hash"
                    if problem:
                        return ChainReport(
                            checked=checked, broken_id=row.id, problem=problem, head_hash=prev_hash
                        )
                    checked += 1
                    prev_hash = row.hash
                    prev_id = row.id
                if progress is not None:
                    progress(len(rows))
        return ChainReport(checked=checked, head_hash=prev_hash)


def _check_query(query: AuditQuery) -> None:
    if query.since and query.until and query.since >= query.until:
        raise InvalidInput("since must be before until", field="since", code="invalid_range")
    for moment, name in ((query.since, "since"), (query.until, "until")):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(
                f"{name} needs a timezone offset, e.g. 2030-01-01T09:00:00Z",
                field=name,
                code="timezone_required",
            )
    if query.outcome is not None and query.outcome not in OUTCOMES:
        raise InvalidInput(
            f"outcome must be one of {sorted(OUTCOMES)}", field="outcome", code="invalid_outcome"
        )
    if query.action is not None and (len(query.action) > _MAX_ACTION or "\x00" in query.action):
        raise InvalidInput("action must be at most 64 characters without NUL", field="action")
