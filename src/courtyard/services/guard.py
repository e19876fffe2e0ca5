"""Brute-force protection for sign-in and second-factor attempts.

Failures are counted per key in the database (shared by every worker and node):
``login:<name as typed, folded>`` and ``ip:<address>`` for passwords, ``second:<user id>`` for
codes. Past ``slow_down_after`` failures each refusal is delayed, doubling up to a cap; at
a key's threshold the key is locked for ``lockout`` and attempts get 429 with Retry-After
before any password is checked. Keys are the name as typed, so an unknown account is
throttled exactly like a real one: responses reveal nothing about existence.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass

from courtyard.domain.errors import RateLimited
from courtyard.services.audit import DENIED, note
from courtyard.services.context import ServiceContext

LOCKED_MESSAGE = "too many failed attempts; try again later"


@dataclass(frozen=True, slots=True)
class GuardKey:
    """One counter: its key and how many failures lock it."""

    key: str
    threshold: int
    delays: bool = True


def login_key(login: str) -> str:
    """The counter for a login name as typed (never revealing whether it exists)."""
    return "login:" + login.strip().casefold()[:190]


def ip_key(ip: str) -> str:
    """The counter for a client address."""
    return "ip:" + ip[:190]


def second_factor_key(user_id: int) -> str:
    """The counter for second-factor codes of one user."""
    return f"second:{user_id}"


class Guard:
    """Counts failures, delays answers and locks keys."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def password_keys(self, login: str, ip: str) -> list[GuardKey]:
        """The counters a password attempt touches."""
        lockout = self._ctx.policy.security.lockout
        keys = [GuardKey(login_key(login), lockout.account_attempts)]
        if ip:
            # Per-address counting locks spraying; it does not delay (one office, one NAT).
            keys.append(GuardKey(ip_key(ip), lockout.ip_attempts, delays=False))
        return keys

    def second_factor_keys(self, user_id: int) -> list[GuardKey]:
        """The counter a code attempt touches."""
        lockout = self._ctx.policy.security.lockout
        return [GuardKey(second_factor_key(user_id), lockout.second_factor_attempts)]

    async def check(self, keys: list[GuardKey]) -> bool:
        """RateLimited if any key is locked now; else whether the first key counts failures
        (so that a success only writes when there is something to forget)."""
        policy = self._ctx.policy.security.lockout
        now = self._ctx.clock()
        counted = False
        async with self._ctx.storage.snapshot() as uow:
            for index, key in enumerate(keys):
                state = await uow.attempts.state(key.key, now=now, window=policy.window)
                if state.locked_until is not None:
                    wait = math.ceil((state.locked_until - now).total_seconds())
                    raise RateLimited(
                        LOCKED_MESSAGE, retry_after=max(1, wait), code="too_many_attempts"
                    )
                if index == 0:
                    counted = state.failures > 0
        return counted

    async def failed(
        self, keys: list[GuardKey], *, ip: str, user_agent: str, subject: str | None = None
    ) -> None:
        """Count a failure on every key, lock those at their threshold (audited), then wait
        the progressive delay before the caller answers."""
        policy = self._ctx.policy.security.lockout
        now = self._ctx.clock()
        delay = 0.0
        async with self._ctx.storage.transaction() as uow:
            for key in keys:
                failures = await uow.attempts.fail(key.key, now=now, window=policy.window)
                if key.delays:
                    delay = max(delay, policy.delay_for(failures))
                if failures >= key.threshold:
                    await uow.attempts.lock(key.key, until=now + policy.lockout)
                    note(
                        uow,
                        self._ctx,
                        None,
                        "auth.lockout",
                        target=_shown_key(key.key, subject),
                        outcome=DENIED,
                        ip=ip,
                        user_agent=user_agent,
                        details={
                            "failures": failures,
                            "seconds": int(policy.lockout.total_seconds()),
                        },
                    )
        if delay:
            await asyncio.sleep(delay)

    async def prune(self) -> int:
        """Drop counters whose window and lockout are over (keeps the table small)."""
        policy = self._ctx.policy.security.lockout
        async with self._ctx.storage.transaction() as uow:
            return await uow.attempts.prune(before=self._ctx.clock() - policy.window)

    async def unlock(self, *, login: str | None = None, address: str | None = None) -> bool:
        """Lift the lockout of a login name or an address (the operator); audited. False if
        nothing was counted for it."""
        key = login_key(login) if login is not None else ip_key(address or "")
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            state = await uow.attempts.state(
                key, now=now, window=self._ctx.policy.security.lockout.window
            )
            found = state.failures > 0 or state.locked_until is not None
            await uow.attempts.clear(key)
            if found:
                note(
                    uow,
                    self._ctx,
                    None,
                    "auth.unlocked",
                    target=_shown_key(key, None),
                    details={"via": "cli"},
                )
        return found

    async def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (the address counter is left to expire)."""
        async with self._ctx.storage.transaction() as uow:
            await uow.attempts.clear(key)


def _shown_key(key: str, subject: str | None) -> str:
    if key.startswith("ip:"):
        return key
    if subject is not None:
        return subject
    # A typed login might be a password typed in the wrong field: audit only its hash.
    return "login sha256:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:16]
