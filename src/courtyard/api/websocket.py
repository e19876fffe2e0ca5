"""The event socket, ``/api/v1/events``: handshake, authentication and inbound frames.

This is an asyncio protocol that uvicorn hands upgraded connections to (``ws=`` in its
config), instead of an ASGI WebSocket app. Owning the transport lets the hub write one
pre-encoded frame to every recipient's socket — the lean fan-out path measured in
docs/adr/0008 — while the ``websockets`` library's sans-I/O protocol does the parsing:
handshake, masking, fragmentation, control frames and the close handshake.

Authentication: ``Authorization: Bearer`` on the upgrade request, the session cookie (then the
``Origin`` must be the site's own), or — for clients that cannot set headers — a first frame
``{"type": "auth", "token": "..."}`` within ``auth_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from courtyard.api.deps import SESSION_COOKIE
from courtyard.domain.errors import CourtyardError
from courtyard.domain.users import Actor
from courtyard.realtime import closecodes
from courtyard.realtime.connection import Connection
from courtyard.realtime.gateway import Realtime
from courtyard.realtime.wire import (
    Activity,
    Auth,
    Ping,
    PresenceSubscribe,
    Typing,
    control_frame,
    decode_client_message,
)
from courtyard.services.registry import Services

logger = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
_MAX_SINCE = 2**63 - 1


@dataclass
class EventEndpoint:
    """Everything the event socket needs; one per process."""

    services: Services
    realtime: Realtime
    allowed_origins: frozenset[str]
    max_frame_bytes: int = 65_536
    socket_send_buffer: int = 256 * 1024
    frames_per_second: float = 20.0
    frame_burst: int = 60
    max_violations: int = 50
    auth_timeout: float = 10.0
    close_timeout: float = 5.0
    open_sockets: set[EventSocket] = field(default_factory=set)

    def protocol_factory(self) -> Any:
        """What uvicorn's ``ws=`` option takes: called once per upgraded connection."""
        return functools.partial(EventSocket, endpoint=self)


class EventSocket(asyncio.Protocol):
    """One client's event socket."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: Any,
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        endpoint: EventEndpoint,
    ) -> None:
        del config, app_state
        self.endpoint = endpoint
        self.server_state = server_state
        self.loop = _loop or asyncio.get_running_loop()
        self.ws = ServerProtocol(max_size=endpoint.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self.ip = ""
        self.conn: Connection | None = None
        self.accepted = False
        self.pending_since: int | None = None
        self.fragments: list[bytes] = []
        self.fragment_size = 0
        self.tokens = float(endpoint.frame_burst)
        self.refilled = time.monotonic()
        self.violations = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """uvicorn hands over the socket (the HTTP request follows in data_received)."""
        # uvloop's transports do not subclass asyncio.Transport but implement it.
        self.transport = cast("asyncio.Transport", transport)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # A fixed kernel buffer (no autotuning to megabytes): a client that stops reading
            # is noticed by the outbound-buffer cap instead of parking data in the kernel.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.endpoint.socket_send_buffer)
        peer = self.transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else ""
        self.server_state.connections.add(self)
        self.endpoint.open_sockets.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: forget everything about it."""
        self.server_state.connections.discard(self)
        self.endpoint.open_sockets.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        for task in self.tasks:
            task.cancel()
        if self.conn is not None:
            self.endpoint.realtime.closed(self.conn)

    def pause_writing(self) -> None:
        """Flow control from the transport."""
        if self.conn is not None:
            self.conn.pause_writing()

    def resume_writing(self) -> None:
        """Flow control from the transport."""
        if self.conn is not None:
            self.conn.resume_writing()

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the WebSocket parser and act on what it finds."""
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        """The client half-closed."""
        self.ws.receive_eof()
        self._flush()
        return None

    def shutdown(self) -> None:
        """uvicorn is stopping: tell the client to come back later."""
        self.close(closecodes.GOING_AWAY, "server restarting")

    # --- handshake and authentication -----------------------------------------------------
    def _on_request(self, request: Request) -> None:
        endpoint = self.endpoint
        target = urlsplit(request.path)
        if target.path != EVENTS_PATH:
            self._reject(HTTPStatus.NOT_FOUND, "no such WebSocket endpoint")
            return
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in endpoint.allowed_origins:
            self._reject(HTTPStatus.FORBIDDEN, "cross-origin WebSocket connections are refused")
            return
        since = _parse_since(target.query)
        if since is False:
            self._reject(HTTPStatus.BAD_REQUEST, "since must be a non-negative integer")
            return
        if not endpoint.realtime.admit(self.ip):
            self._reject(HTTPStatus.TOO_MANY_REQUESTS, "too many connections from this address")
            return
        self.pending_since = since if isinstance(since, int) else None
        secret, via_cookie = _credentials(request)
        if via_cookie and origin is None:
            self._reject(HTTPStatus.FORBIDDEN, "cookie sessions need an Origin header")
            return
        if secret is not None:
            self._spawn(self._authenticate_then_accept(request, secret))
        else:
            self._accept(request)
            self.timer = self.loop.call_later(endpoint.auth_timeout, self._auth_timed_out)

    async def _authenticate_then_accept(self, request: Request, secret: str) -> None:
        actor = await self._authenticate(secret)
        if actor is None:
            self._reject(HTTPStatus.UNAUTHORIZED, "invalid or expired credentials")
            return
        self._accept(request)
        await self._open(actor)

    async def _authenticate(self, secret: str) -> Actor | None:
        try:
            # Queue behind the other handshakes instead of exhausting the connection pool.
            async with self.endpoint.realtime.database_gate:
                actor = await self.endpoint.services.sessions.authenticate(secret)
        except CourtyardError:
            return None
        if not actor.has_scope("read"):
            return None
        return actor

    def _accept(self, request: Request) -> None:
        response = self.ws.accept(request)
        self.ws.send_response(response)
        self.accepted = response.status_code == HTTPStatus.SWITCHING_PROTOCOLS
        self._flush()

    def _reject(self, status: HTTPStatus, text: str) -> None:
        response = self.ws.reject(status, text + "\n")
        self.ws.send_response(response)
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def _auth_timed_out(self) -> None:
        if self.conn is None:
            self.close(closecodes.UNAUTHENTICATED, "authenticate within the first seconds")

    async def _first_frame_auth(self, token: str) -> None:
        actor = await self._authenticate(token)
        if actor is None:
            self.close(closecodes.UNAUTHENTICATED, "invalid or expired credentials")
            return
        await self._open(actor)

    async def _open(self, actor: Actor) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        assert self.transport is not None
        if self.ws.state is not State.OPEN:
            return
        realtime = self.endpoint.realtime
        # The outbound-buffer cap is the transport's high-water mark (see Connection).
        self.transport.set_write_buffer_limits(
            high=realtime.options.max_buffer_bytes, low=realtime.options.max_buffer_bytes // 4
        )
        self.conn = Connection(
            connection_id=realtime.new_connection_id(),
            transport=self.transport,
            user_id=actor.user_id,
            is_guest=actor.is_guest,
            ip=self.ip,
            closer=self._close_from_hub,
            session_id=actor.session_id,
            token_id=actor.token_id,
            max_buffer=realtime.options.max_buffer_bytes,
        )
        await realtime.open(self.conn, self.pending_since)

    # --- frames from the client -----------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        if self.conn is not None:
            self.conn.last_received = time.monotonic()
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.CONT:
            self._on_data(frame)
        elif opcode is Opcode.BINARY:
            self.close(closecodes.UNSUPPORTED_DATA, "only text frames are accepted")
        elif opcode is Opcode.CLOSE:
            self._after_close_frame()

    def _on_data(self, frame: Frame) -> None:
        self.fragment_size += len(frame.data)
        if self.fragment_size > self.endpoint.max_frame_bytes:
            self.close(closecodes.MESSAGE_TOO_BIG, "message too big")
            return
        chunk = bytes(frame.data)
        if not frame.fin:
            self.fragments.append(chunk)
            return
        data = b"".join([*self.fragments, chunk]) if self.fragments else chunk
        self.fragments = []
        self.fragment_size = 0
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.close(closecodes.INVALID_PAYLOAD, "text frames must be UTF-8")
            return
        if not self._take_token():
            return
        self._on_message(text)

    def _take_token(self) -> bool:
        endpoint = self.endpoint
        now = time.monotonic()
        self.tokens = min(
            float(endpoint.frame_burst),
            self.tokens + (now - self.refilled) * endpoint.frames_per_second,
        )
        self.refilled = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self._violation("rate_limited", "too many frames; slow down")
        return False

    def _violation(self, code: str, detail: str) -> None:
        self.violations += 1
        if self.violations > self.endpoint.max_violations:
            self.close(closecodes.POLICY_VIOLATION, "too many bad or excessive frames")
        elif self.violations <= 10 or self.violations % 10 == 0:
            self._send(control_frame({"type": "error", "code": code, "detail": detail}))

    def _on_message(self, text: str) -> None:
        try:
            message = decode_client_message(text)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._violation("invalid_message", f"unreadable message: {exc}"[:200])
            return
        conn = self.conn
        if isinstance(message, Auth):
            if conn is None and not self.tasks:
                self._spawn(self._first_frame_auth(message.token))
            else:
                self._violation("already_authenticated", "this connection is already authenticated")
            return
        if conn is None:
            self._violation("unauthenticated", "send an auth message first")
            return
        realtime = self.endpoint.realtime
        if isinstance(message, Ping):
            conn.write(control_frame({"type": "pong", "position": realtime.position}))
        elif isinstance(message, Typing):
            if not realtime.typing(conn, message.channel_id, message.thread_root_id):
                self._violation("not_found", "channel not found")
        elif isinstance(message, PresenceSubscribe):
            self._spawn(self._watch_presence(conn, message.user_ids))
        elif isinstance(message, Activity):
            realtime.activity(conn, active=message.state == "active")

    async def _watch_presence(self, conn: Connection, user_ids: list[int]) -> None:
        visible = await self.endpoint.services.presence.visible_user_ids(conn.user_id, user_ids)
        if not conn.closed:
            self.endpoint.realtime.watch_presence(conn, frozenset(visible))

    # --- writing and closing --------------------------------------------------------------
    def _send(self, frame: bytes) -> None:
        if self.conn is not None:
            self.conn.write(frame)
        elif self.transport is not None and self.accepted:
            self.transport.write(frame)

    def _flush(self) -> None:
        if self.transport is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
        if self.ws.close_rcvd is not None or self.ws.state is State.CLOSED:
            # The closing handshake is complete (or the client started it): the server
            # closes TCP first, after the queued bytes are written.
            self.transport.close()
        elif self.ws.close_expected():
            self._close_transport_soon()

    def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` (through the hub's bookkeeping when authenticated)."""
        if self.conn is not None:
            self.conn.close(code, reason)
        else:
            self._close_from_hub(code, reason)

    def _close_from_hub(self, code: int, reason: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason[:120])
            self._flush()
        elif not self.accepted:
            self.transport.close()
            return
        self._close_transport_soon()

    def _after_close_frame(self) -> None:
        if self.conn is not None:
            self.conn.mark_closed()
        self._close_transport_soon()

    def _close_transport_soon(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.ws.state is State.CLOSED:
            transport.close()
            return
        # Wait briefly for the client's closing frame, then drop the connection.
        self.timer = self.loop.call_later(self.endpoint.close_timeout, transport.abort)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("event socket task failed", exc_info=task.exception())
            self.close(closecodes.INTERNAL_ERROR, "internal error")


def _credentials(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    raw_cookie = request.headers.get("Cookie")
    if raw_cookie:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw_cookie)
        except CookieError:
            return None, False
        morsel = jar.get(SESSION_COOKIE)
        if morsel is not None and morsel.value:
            return morsel.value, True
    return None, False


def _parse_since(query: str) -> int | bool | None:
    """The ``since`` position: None when absent, False when malformed."""
    values = parse_qs(query, keep_blank_values=True).get("since")
    if not values:
        return None
    raw = values[-1]
    if not raw.isdigit() or len(raw) > 19:
        return False
    since = int(raw)
    return since if since <= _MAX_SINCE else False
