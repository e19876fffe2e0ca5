"""Session limits: ending sessions past their role's idle or absolute limit, periodically.

Every server process sweeps; ending a session announces ``sessions.ended``, which closes its
sockets on every node and drops cached credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from courtyard.domain.roles import Role
from courtyard.services.audit import note
from courtyard.services.context import ServiceContext
from courtyard.services.guard import Guard
from courtyard.storage.engine import background_work
from courtyard.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

Announce = Callable[[UnitOfWork, int, list[int] | None, list[int] | None, str], None]


class SessionSweeper:
    """Ends expired sessions on demand and every :meth:`sweep_interval` seconds."""

    def __init__(self, ctx: ServiceContext, announce: Announce, guard: Guard) -> None:
        self._ctx = ctx
        self._announce = announce
        self._guard = guard
        self._sweeper: asyncio.Task[None] | None = None

    async def end_expired(self, user_id: int, session_ids: list[int], reason: str) -> None:
        async with self._ctx.storage.transaction() as uow:
            await uow.credentials.delete_sessions(session_ids)
            self._announce(uow, user_id, session_ids, None, f"session expired ({reason})")
            note(
                uow,
                self._ctx,
                None,
                "auth.session_expired",
                target=f"user:{user_id}",
                details={"reason": reason, "sessions": list[str | int](session_ids)},
            )

    async def expire_sessions(self) -> int:
        """End every session past its idle or absolute limit (their sockets close too);
        returns how many ended. Runs periodically in every server process."""
        now = self._ctx.clock()
        security = self._ctx.policy.security
        idle_cutoffs: dict[str, datetime] = {}
        created_cutoffs: dict[str, datetime] = {}
        for role in Role:
            limits = security.limits_for(role)
            if limits.idle is not None:
                idle_cutoffs[role.value] = now - limits.idle
            # expires_at already holds the general lifetime; only shorter role limits (which
            # a promotion can bring) need the creation time.
            if limits.lifetime < self._ctx.policy.session_lifetime:
                created_cutoffs[role.value] = now - limits.lifetime
        async with self._ctx.storage.transaction() as uow:
            found = await uow.credentials.sessions_past_limits(
                now=now, idle_cutoffs=idle_cutoffs, created_cutoffs=created_cutoffs
            )
            ended = await uow.credentials.delete_sessions_returning([sid for sid, _ in found])
            by_user: dict[int, list[int]] = {}
            for session_id, user_id in ended:
                by_user.setdefault(user_id, []).append(session_id)
            for user_id, session_ids in by_user.items():
                self._announce(uow, user_id, session_ids, None, "session expired")
                note(
                    uow,
                    self._ctx,
                    None,
                    "auth.session_expired",
                    target=f"user:{user_id}",
                    details={"sessions": list[str | int](session_ids)},
                )
        return len(ended)

    def sweep_interval(self) -> float:
        """Seconds between sweeps: a quarter of the shortest idle limit, within 1-60 s."""
        security = self._ctx.policy.security
        idles = [
            limits.idle.total_seconds()
            for limits in (security.limits_for(role) for role in Role)
            if limits.idle is not None
        ]
        return max(1.0, min([60.0, *(idle / 4 for idle in idles)]))

    async def start(self) -> None:
        """Start the periodic sweep of expired sessions."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="session-sweeper")

    async def stop(self) -> None:
        """Stop the sweep."""
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval())
            try:
                token = background_work.set(True)
                try:
                    await self.expire_sessions()
                    await self._guard.prune()
                finally:
                    background_work.reset(token)
            except Exception:
                logger.exception("session sweep failed")
