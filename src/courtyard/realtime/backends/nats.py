"""NATS bus (core NATS subjects; JetStream is not needed because the database is the log)."""

from __future__ import annotations

import logging
from typing import Any

import nats

from courtyard.realtime.bus import Bus, BusHandler

logger = logging.getLogger(__name__)


class NatsBus(Bus):
    """Publishes to one subject; the client library calls the handler for each message."""

    name = "nats"

    def __init__(self, url: str, subject: str) -> None:
        self._url = url
        self._subject = subject
        self._client: Any = None

    async def start(self, handler: BusHandler) -> None:
        """Connect and subscribe."""
        self._client = await nats.connect(self._url, name="courtyard", max_reconnect_attempts=-1)

        async def on_message(message: Any) -> None:
            try:
                handler(message.data)
            except Exception:
                logger.exception("bus handler failed")

        await self._client.subscribe(self._subject, cb=on_message)
        await self._client.flush()

    async def publish(self, message: bytes) -> None:
        """Publish to the subject."""
        assert self._client is not None, "bus not started"
        await self._client.publish(self._subject, message)

    async def close(self) -> None:
        """Drain and disconnect."""
        if self._client is not None:
            await self._client.drain()
            self._client = None
