"""The in-process bus: one Courtyard process, no broker."""

from __future__ import annotations

import asyncio

from courtyard.realtime.bus import Bus, BusHandler


class MemoryBus(Bus):
    """Delivers to handlers in this process on the next loop iteration, in publish order.

    Several MemoryBus objects may share a ``Broker`` to simulate processes in tests.
    """

    name = "memory"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self._broker = broker or MemoryBroker()
        self._handler: BusHandler | None = None

    @property
    def has_peers(self) -> bool:
        """Whether another bus shares the broker (tests simulating several processes)."""
        return any(handler is not self._handler for handler in self._broker.handlers)

    async def start(self, handler: BusHandler) -> None:
        """Subscribe."""
        self._handler = handler
        self._broker.handlers.append(handler)

    async def publish(self, message: bytes) -> None:
        """Deliver to every subscriber soon (never synchronously inside the caller)."""
        loop = asyncio.get_running_loop()
        for handler in list(self._broker.handlers):
            loop.call_soon(handler, message)

    async def close(self) -> None:
        """Unsubscribe."""
        if self._handler is not None and self._handler in self._broker.handlers:
            self._broker.handlers.remove(self._handler)
        self._handler = None


class MemoryBroker:
    """The shared state of in-process buses."""

    def __init__(self) -> None:
        self.handlers: list[BusHandler] = []
