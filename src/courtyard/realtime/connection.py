"""One client's event-socket connection, as the hub sees it.

The transport layer (``courtyard.api.websocket``) owns reading and the WebSocket handshake;
the hub only ever writes complete frames through :meth:`Connection.write` and closes through
the ``closer`` the transport layer supplied.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import Enum

from courtyard.realtime import closecodes

Closer = Callable[[int, str], None]


class ConnectionState(Enum):
    """Handshake and auth → catching up (replaying missed events) → live → closed."""

    CATCHING_UP = 1
    LIVE = 2
    CLOSED = 3


class Connection:
    """The hub's handle on one authenticated socket."""

    __slots__ = (
        "_drained",
        "closer",
        "held",
        "id",
        "ip",
        "is_guest",
        "last_ping",
        "last_received",
        "max_buffer",
        "presence_watch",
        "session_expires_at",
        "session_id",
        "state",
        "token_id",
        "transport",
        "user_id",
    )

    def __init__(
        self,
        *,
        connection_id: int,
        transport: asyncio.WriteTransport,
        user_id: int,
        is_guest: bool,
        ip: str,
        closer: Closer,
        session_id: int | None = None,
        token_id: int | None = None,
        session_expires_at: float | None = None,
        max_buffer: int = 1 << 20,
        greeting: bytes = b"",
    ) -> None:
        self.id = connection_id
        self.transport = transport
        self.user_id = user_id
        self.is_guest = is_guest
        self.ip = ip
        self.closer = closer
        self.session_id = session_id
        self.token_id = token_id
        self.session_expires_at = session_expires_at
        self.max_buffer = max_buffer
        self.state = ConnectionState.CATCHING_UP
        now = time.monotonic()
        self.last_received = now
        self.last_ping = now
        self.presence_watch: frozenset[int] = frozenset()
        self._drained: asyncio.Event | None = None
        # Frames held back until the greeting is complete, then sent in one write (see
        # :meth:`release`); starts with ``greeting``, the transport's bytes not yet sent.
        self.held: list[bytes] | None = [greeting] if greeting else []

    @property
    def closed(self) -> bool:
        """Whether the connection was closed (by either side)."""
        return self.state is ConnectionState.CLOSED

    def write(self, frame: bytes) -> None:
        """Queue one complete frame (the hub's hot loop inlines this for live connections).

        The transport's high-water mark is the outbound-buffer cap: crossing it calls
        :meth:`pause_writing`, which evicts a live client — no per-write size check.
        """
        if self.state is not ConnectionState.CLOSED:
            held = self.held
            if held is None:
                self.transport.write(frame)
            else:
                held.append(frame)

    def release(self) -> None:
        """Send the held frames in one write, and every later frame as it comes.

        A connection starts holding: its handshake response, ``hello`` and, when there is
        nothing to replay, ``caught_up`` leave in one write instead of three. Each write to a
        socket is a system call that also runs the loopback receiver's side; in a reconnect
        storm they were a fifth of the server's CPU (docs/benchmarks.md, T9). The gateway
        releases before replaying (so replayed events are under flow control) and on going
        live, and :meth:`close` releases before the closing frame.
        """
        held = self.held
        if held is None:
            return
        self.held = None
        if held and self.state is not ConnectionState.CLOSED:
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self, code: int, reason: str) -> None:
        """Close with a code the client can act on (idempotent)."""
        if self.state is ConnectionState.CLOSED:
            return
        self.release()
        self.state = ConnectionState.CLOSED
        if self._drained is not None:
            self._drained.set()
        self.closer(code, reason)

    def mark_closed(self) -> None:
        """The transport went away; forget pending writes."""
        self.held = None
        self.state = ConnectionState.CLOSED
        if self._drained is not None:
            self._drained.set()

    # --- flow control during replay ------------------------------------------------------
    def pause_writing(self) -> None:
        """The transport's buffer crossed the cap: evict a live client; pause a replay."""
        if self.state is ConnectionState.LIVE:
            self.close(closecodes.SLOW_CONSUMER, "slow consumer: reconnect with since")
            return
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()

    def resume_writing(self) -> None:
        """The transport's buffer drained below its low-water mark."""
        if self._drained is not None:
            self._drained.set()

    async def drained(self) -> None:
        """Wait until the client has read enough (used between replay batches)."""
        if self._drained is not None and not self._drained.is_set():
            await self._drained.wait()
