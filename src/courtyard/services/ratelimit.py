"""Rate limits: token buckets per user and per client address, by route class.

A :class:`BucketStore` keeps the buckets: :class:`MemoryBuckets` in this process, or the Redis
store in :mod:`courtyard.realtime.backends.redis_limiter` (shared by every worker and node).
:class:`RateLimits` holds the configured limits and answers "may this go ahead?"; the HTTP edge
asks it per address before authentication and per user after it, the event socket per frame.

Refusals are counted and summarised (one log line and one audit record per interval) rather
than recorded one per request: a flood must not become a flood of audit rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from courtyard.domain.audit import Details
from courtyard.domain.errors import RateLimited
from courtyard.domain.network import (
    IPAddress,
    IPNetwork,
    Limit,
    TokenBucket,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

#: The route classes; each has a per-user and (except frames) a per-address limit.
CLASSES = ("auth", "writes", "reads", "uploads", "frames")

#: ``(action, details)`` for the audit log; wired by the composition root.
SecurityEventSink = Callable[[str, Details], Awaitable[None]]


class BucketStore(Protocol):
    """Where buckets live (here, or in Redis: realtime/backends/redis_limiter.py)."""

    name: str

    async def take(self, key: str, limit: Limit) -> float:
        """Take one token from ``key``'s bucket: 0.0 if allowed, else seconds to wait."""

    async def start(self) -> None:
        """Connect (if anything to connect to)."""

    async def stop(self) -> None:
        """Disconnect."""


class MemoryBuckets:
    """Buckets in this process's memory; full buckets are forgotten, so memory stays bounded
    by the number of clients active within one refill period."""

    name = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 200_000):
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock
        self._max_keys = max_keys
        self._next_prune = 0.0

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect."""

    async def take(self, key: str, limit: Limit) -> float:
        """Synchronous underneath; see :meth:`take_now`."""
        return self.take_now(key, limit)

    def take_now(self, key: str, limit: Limit) -> float:
        """Take a token without awaiting (the event socket's frame path is synchronous)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys or now >= self._next_prune:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket.full(limit.rate, limit.burst, now)
        return bucket.take(now)

    def _prune(self, now: float) -> None:
        self._next_prune = now + 10.0
        for key in [k for k, b in self._buckets.items() if b.idle_until() <= now]:
            del self._buckets[key]
        while len(self._buckets) >= self._max_keys:  # under attack by many addresses
            self._buckets.pop(next(iter(self._buckets)))

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class RateLimits:
    """The configured limits and the store they are counted in."""

    store: BucketStore
    per_user: dict[str, Limit]
    per_address: dict[str, Limit]
    exempt: tuple[IPNetwork, ...] = ()
    enabled: bool = True
    summary_interval: float = 60.0
    on_event: SecurityEventSink | None = None
    frames: MemoryBuckets = field(default_factory=MemoryBuckets)
    _refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    _store_failures: int = 0
    _summary_task: asyncio.Task[None] | None = None

    def is_exempt(self, address: IPAddress | None) -> bool:
        """Whether ``address`` is never limited."""
        if not self.enabled:
            return True
        return address is not None and any(
            address.version == n.version and address in n for n in self.exempt
        )

    async def check_address(self, route_class: str, address: IPAddress | None) -> None:
        """Raise RateLimited if ``address`` is over its limit for ``route_class``."""
        limit = self.per_address.get(route_class)
        if limit is None or address is None or self.is_exempt(address):
            return
        await self._take(f"ip:{route_class}:{address}", limit, route_class, "address")

    async def check_user(
        self, route_class: str, user_id: int, address: IPAddress | None = None
    ) -> None:
        """Raise RateLimited if user ``user_id`` is over its limit for ``route_class``."""
        limit = self.per_user.get(route_class)
        if limit is None or self.is_exempt(address):
            return
        await self._take(f"user:{route_class}:{user_id}", limit, route_class, "user")

    def allow_frame(self, user_id: int, address: IPAddress | None) -> bool:
        """Whether a user may send one more event-socket message (in-process buckets: a frame
        is too small a thing for a network round trip)."""
        limit = self.per_user.get("frames")
        if limit is None or self.is_exempt(address):
            return True
        if self.frames.take_now(f"user:frames:{user_id}", limit) == 0.0:
            return True
        self._refused[("frames", "user")] += 1
        return False

    async def _take(self, key: str, limit: Limit, route_class: str, kind: str) -> None:
        try:
            wait = await self.store.take(key, limit)
        except Exception:
            # Fail open: an unreachable Redis must not take the whole service down with it.
            self._store_failures += 1
            if self._store_failures == 1 or self._store_failures % 1000 == 0:
                logger.warning(
                    "rate-limit store %s failed (%d times); allowing requests",
                    self.store.name,
                    self._store_failures,
                    exc_info=True,
                )
            return
        if wait > 0.0:
            self._refused[(route_class, kind)] += 1
            raise RateLimited(
                f"too many {route_class} requests from this {kind}; slow down",
                retry_after=retry_after_seconds(wait),
            )

    def refusals(self) -> dict[str, int]:
        """Refusals since the last summary, as ``{"writes/user": n}``."""
        return {f"{c}/{k}": n for (c, k), n in sorted(self._refused.items())}

    async def start(self) -> None:
        """Connect the store and start summarising refusals."""
        await self.store.start()
        if self.summary_interval > 0:
            self._summary_task = asyncio.create_task(self._summarise(), name="ratelimit-summary")

    async def stop(self) -> None:
        """Flush the last summary and disconnect."""
        if self._summary_task is not None:
            self._summary_task.cancel()
            self._summary_task = None
        await self.flush_summary()
        await self.store.stop()

    async def _summarise(self) -> None:
        while True:
            await asyncio.sleep(self.summary_interval)
            try:
                await self.flush_summary()
            except Exception:
                logger.warning("could not record the rate-limit summary", exc_info=True)

    async def flush_summary(self) -> None:
        """Log and audit the refusals counted since the last call (if any)."""
        counts = self.refusals()
        if not counts:
            return
        self._refused.clear()
        logger.warning("rate limits refused requests: %s", counts)
        if self.on_event is not None:
            details: Details = {"interval_seconds": int(self.summary_interval)}
            details.update({f"refused:{key}": n for key, n in counts.items()})
            await self.on_event("rate_limit.refused", details)
