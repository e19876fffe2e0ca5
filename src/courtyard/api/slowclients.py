"""uvicorn's HTTP protocol with deadlines for slow clients (slowloris and slow POST), writing
each small response in one piece (see api/http_writes.py).

uvicorn closes idle keep-alive connections, but it waits forever for a request's headers and
for its body. This subclass adds deadlines per connection:

* **headers**: from the connection (or the first byte of the next request) to the end of the
  headers, at most ``header_timeout`` seconds — a client dribbling one header byte at a time
  is disconnected;
* **slow read**: a client whose unread response fills the send buffer and then reads nothing
  for ``send_timeout`` seconds is dropped (nginx's ``send_timeout``);
* **body**: after ``body_grace`` seconds the body must have kept arriving at
  ``min_body_rate`` bytes per second on average (nginx's ``client_body_timeout`` idea, but a
  rate, so a 1-byte-per-second trickle cannot hold a connection open either).

A timer per connection is re-armed only when it fires, so the cost is one timer per connection,
not one per received chunk. The deadlines and their measured effect are in docs/security.md.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import termios
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from courtyard.api.http_writes import HeadHoldingTransport

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/problem+json\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_BODY = (
    b'{"type":"urn:courtyard:problem:request_timeout","title":"Request Timeout","status":408,'
    b'"code":"request_timeout","detail":"the request was sent too slowly"}'
)


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """How many bytes the client has sent that this process has not read yet (0 if unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    waiting = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, waiting, True)
    except OSError:
        return 0
    return int(waiting[0])


class SlowClientLimits:
    """The deadlines (set once per process from the settings)."""

    header_timeout = 10.0
    body_grace = 30.0
    min_body_rate = 1024.0
    send_timeout = 60.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus header and body deadlines."""

    limits = SlowClientLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._phase = ""  # "headers", "body" or "" (nothing pending)
        self._started = 0.0
        self._body_bytes = 0

    # --- arming and disarming -------------------------------------------------------------
    def _arm(self, phase: str, delay: float) -> None:
        self._disarm()
        self._phase = phase
        self._deadline_timer = self.loop.call_later(delay, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._phase = ""

    def _deadline_passed(self) -> None:
        self._deadline_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self._phase == "headers" and unread_bytes(self.transport) > 0:
            # The request is waiting in the kernel: the client sent it, this process has not
            # read it yet (a loop busy with thousands of handshakes). Not the client's fault.
            self._arm("headers", self.limits.header_timeout)
            return
        if self._phase == "body":
            limits = self.limits
            due = self._started + limits.body_grace + self._body_bytes / limits.min_body_rate
            remaining = due - time.monotonic()
            if self.flow is not None and self.flow.read_paused:
                # We stopped reading (the application is busy with what it has): not their fault.
                self._started = time.monotonic() - self._body_bytes / limits.min_body_rate
                remaining = limits.body_grace
            if remaining > 0:
                self._arm("body", remaining)
                return
        response_started = self.cycle is not None and getattr(self.cycle, "response_started", False)
        if not response_started:
            self.transport.write(_TIMEOUT_RESPONSE % (len(_BODY), _BODY))
        if self.cycle is not None:
            self.cycle.keep_alive = False
        self.transport.close()

    # --- uvicorn hooks --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers", self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client stopped reading (the transport's buffer is full): start the clock."""
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.send_timeout, self._stalled)

    def resume_writing(self) -> None:
        """The client reads again."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _stalled(self) -> None:
        # close() would wait for the unread buffer to drain: drop it instead.
        self._write_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != "headers":
            self._arm("headers", self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.transport.is_closing() or self.parser is None:
            return
        if self.parser.should_upgrade():
            return  # the event socket has its own timeouts
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = HeadHoldingTransport(self.transport, cycle, self.loop)  # type: ignore[assignment]
        headers = dict(self.headers or [])
        length = headers.get(b"content-length", b"0")
        if length not in (b"0", b"") or b"transfer-encoding" in headers:
            self._started = time.monotonic()
            self._body_bytes = 0
            self._arm("body", self.limits.body_grace)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._phase == "body":
            self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        protocol = self.ws_protocol_class(  # type: ignore[call-arg, misc]
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        take_request = getattr(protocol, "upgrade_request", None)
        if take_request is None:
            super().handle_websocket_upgrade()
            return
        # uvicorn would write the parsed request back out as bytes for the WebSocket protocol
        # to parse again; a protocol that takes it parsed skips both (docs/benchmarks.md, T9).
        self.connections.discard(self)
        protocol.connection_made(self.transport)
        take_request(
            self.scope["method"], self.url, self.scope["headers"], self.scope["http_version"]
        )
        self.transport.set_protocol(protocol)
        # This protocol's connection_lost will never run (the socket has a new protocol), and
        # the parser refers back to it: drop the parser, as connection_lost would, so that
        # reference counting frees both instead of the cyclic collector (docs/adr/0022).
        self.parser = None  # type: ignore[assignment]
