"""One write per small HTTP response instead of two.

uvicorn writes a response's status line and headers as soon as the application starts the
response, and its body when the application sends it: two ``send`` system calls, two TCP
segments, two wake-ups of the client. On loopback those two calls were a third of the server's
CPU for a 50-message history page (py-spy, `--gil`; the first alone 23 %), more than building
the page.

:class:`HeadHoldingTransport` stands in for the transport of one request/response cycle. It
holds the head back until the body's first bytes and writes both together. The head is never
held past the current turn of the event loop: a response whose body comes later (a stream)
gets its head on the next turn, as it would have. Everything else passes straight through.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any


class HeadHoldingTransport:
    """The transport a uvicorn ``RequestResponseCycle`` writes to (see the module docstring)."""

    __slots__ = ("_cycle", "_head_seen", "_held", "_loop", "_transport")

    def __init__(
        self, transport: asyncio.Transport, cycle: Any, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._transport = transport
        # A weak reference: the cycle holds this transport, and a strong reference back made
        # every request's cycle, scope and response state garbage that only the cyclic
        # collector could free (about twenty objects a request), in pauses of 10-15 ms.
        self._cycle = weakref.ref(cycle)
        self._loop = loop
        self._held: bytes | None = None
        self._head_seen = False
        finish: Callable[[], None] = cycle.on_response

        def flush_then_finish() -> None:
            self.flush()
            finish()

        cycle.on_response = flush_then_finish

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold the response head; send it with the next write."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif not self._head_seen and _response_started(self._cycle()):
            # uvicorn writes the head first thing after setting ``response_started`` (a
            # "100 Continue" is written before, while it is still unset).
            self._head_seen = True
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now (end of the loop turn, response complete, or closing)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _response_started(cycle: Any) -> bool:
    return cycle is not None and bool(cycle.response_started)
