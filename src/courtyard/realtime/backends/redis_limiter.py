"""Token buckets in Redis, shared by every worker and node.

One Lua script per take keeps the read-refill-take-write atomic, and uses the Redis server's
clock so that nodes with skewed clocks share one notion of time.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from courtyard.domain.network import Limit

# KEYS[1] bucket; ARGV rate, burst. Returns the wait in microseconds (0: allowed).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil then
  tokens = burst
  stamp = now
end
local elapsed = math.max(0, now - stamp)
tokens = math.min(burst, tokens + elapsed * rate / 1000000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return wait
"""


class RedisBuckets:
    """Buckets as small Redis hashes under ``prefix``, expiring once full again."""

    name = "redis"

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._client: aioredis.Redis | None = None
        self._script: object = None

    async def start(self) -> None:
        """Connect lazily (the first take) with short timeouts."""
        self._client = aioredis.Redis.from_url(
            self._url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._script = self._client.register_script(_TAKE)

    async def take(self, key: str, limit: Limit) -> float:
        """Atomic take in Redis."""
        if self._client is None:
            await self.start()
        script = self._script
        assert callable(script)
        wait_us = await script(keys=[self._prefix + key], args=[limit.rate, limit.burst])
        return int(wait_us) / 1_000_000

    async def stop(self) -> None:
        """Disconnect."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
