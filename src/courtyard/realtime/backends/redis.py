"""Redis (or Valkey) pub/sub bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from courtyard.realtime.bus import Bus, BusHandler

logger = logging.getLogger(__name__)


class RedisBus(Bus):
    """Publishes to one Redis channel; a reader task hands every message to the handler.

    Redis pub/sub is at-most-once: messages published while a subscriber is disconnected are
    lost. Courtyard tolerates that — durable events are repaired from the database.
    """

    name = "redis"

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._client: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, handler: BusHandler) -> None:
        """Connect, subscribe and start reading."""
        self._client = aioredis.Redis.from_url(self._url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel)
        self._reader = asyncio.create_task(self._read(handler), name="redis-bus-reader")

    async def _read(self, handler: BusHandler) -> None:
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("redis bus read failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is not None and message.get("type") == "message":
                try:
                    handler(message["data"])
                except Exception:
                    logger.exception("bus handler failed")

    async def publish(self, message: bytes) -> None:
        """PUBLISH to the channel."""
        assert self._client is not None, "bus not started"
        await self._client.publish(self._channel, message)

    async def close(self) -> None:
        """Stop reading and disconnect."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._client is not None:
            await self._client.aclose()
