"""The event socket, ``/api/v1/events``: handshake, authentication and inbound frames.

This is an asyncio protocol that uvicorn hands upgraded connections to (``ws=`` in its
config), instead of an ASGI WebSocket app. Owning the transport lets the hub write one
pre-encoded frame to every recipient's socket — the lean fan-out path measured in
docs/adr/0008. uvicorn parses the upgrade request, :mod:`courtyard.api.wshandshake` applies
RFC 6455's rules to it and writes the answer (ADR 0025), :mod:`courtyard.api.wsframes` reads
the client's frames and :mod:`courtyard.realtime.frames` writes ours.

Authentication: ``Authorization: Bearer`` on the upgrade request, the session cookie (then the
``Origin`` must be the site's own), or — for clients that cannot set headers — a first frame
``{"type": "auth", "token": "..."}`` within ``auth_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import socket
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any, cast
from urllib.parse import parse_qs

import msgspec

from courtyard.api.deps import SESSION_COOKIE
from courtyard.api.errors import STATUS_BY_ERROR
from courtyard.api.firewall import SOCKET_SURFACES, Firewall, socket_admission
from courtyard.api.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    FrameError,
    read_frames,
)
from courtyard.api.wshandshake import (
    HandshakeRefusal,
    UpgradeRequest,
    read_upgrade,
    refusal_response,
    switching_protocols,
)
from courtyard.domain.errors import (
    CourtyardError,
    MalformedRequest,
    PermissionDenied,
    RateLimited,
)
from courtyard.domain.network import IPAddress
from courtyard.domain.users import Actor
from courtyard.realtime import closecodes
from courtyard.realtime.connection import Connection
from courtyard.realtime.frames import close_frame, pong_frame
from courtyard.realtime.gateway import Realtime
from courtyard.realtime.wire import (
    Activity,
    Auth,
    MessageSend,
    Ping,
    PresenceSubscribe,
    Typing,
    ack_frame,
    control_frame,
    decode_client_message,
    unreadable_send_id,
)
from courtyard.services.message_writer import Sent
from courtyard.services.ratelimit import RateLimits
from courtyard.services.registry import Services

logger = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
#: How long a socket's sender may be reused before its credential is checked again.
SENDER_RECHECK_SECONDS = 1.0
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
    # message.send frames waiting for their message.ack/error, per socket (backpressure).
    max_pending_sends: int = 100
    open_sockets: set[EventSocket] = field(default_factory=set)
    # Network controls (api/firewall.py): firewall rules and per-user frame limits.
    firewall: Firewall | None = None
    limits: RateLimits | None = None

    def protocol_factory(self) -> Any:
        """What uvicorn's ``ws=`` option takes: called once per upgraded connection."""
        return functools.partial(EventSocket, endpoint=self)


class EventSocket(asyncio.Protocol):
    """One client's event socket.

    Until the upgrade the socket answers the request uvicorn parsed (``upgrade_request``);
    after it, :mod:`courtyard.api.wsframes` reads client frames and the hub writes
    pre-encoded server frames.
    """

    __slots__ = (
        "accepted",
        "address",
        "close_received",
        "close_sent",
        "conn",
        "endpoint",
        "fragment_size",
        "fragments",
        "handshaking",
        "ip",
        "loop",
        "pending",
        "pending_since",
        "refilled",
        "replies",
        "secret",
        "sender",
        "sender_checked",
        "sends",
        "server_state",
        "tasks",
        "timer",
        "tokens",
        "transport",
        "unacked",
        "violations",
    )

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
        self.handshaking = True  # until the upgrade request is answered
        self.transport: asyncio.Transport | None = None
        self.ip = ""
        self.address: IPAddress | None = None
        self.conn: Connection | None = None
        self.accepted = False
        self.close_sent = False
        self.close_received = False
        self.pending_since: int | None = None
        # An incomplete frame, if any; before the answer, whatever the client sent early.
        self.pending: bytearray | None = None
        self.fragments: list[bytes] | None = None  # an incomplete message, if any
        self.fragment_size = 0
        self.tokens = float(endpoint.frame_burst)
        self.refilled = time.monotonic()
        self.violations = 0
        self.tasks: set[asyncio.Task[None]] | None = None
        self.timer: asyncio.TimerHandle | None = None
        # Sending over the socket (docs/adr/0014): the credential is re-checked per send
        # through the credential cache, as an HTTP request would be.
        self.secret: str | None = None
        self.sender: Actor | None = None  # who sends, as last authenticated ...
        self.sender_checked = 0.0  # ... at this time.monotonic()
        self.sends: collections.deque[MessageSend] | None = None  # waiting for the intake
        self.unacked = 0  # sent by the client, not yet answered
        self.replies: list[bytes] | None = None  # answers waiting to go out in one write

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
        for task in self.tasks or ():
            task.cancel()
        if self.conn is not None:
            self.endpoint.realtime.closed(self.conn)
            # The connection is closed for good; its closer pointed back at this socket.
            self.conn.closer = _closed_already

    def pause_writing(self) -> None:
        """Flow control from the transport."""
        if self.conn is not None:
            self.conn.pause_writing()

    def resume_writing(self) -> None:
        """Flow control from the transport."""
        if self.conn is not None:
            self.conn.resume_writing()

    def data_received(self, data: bytes) -> None:
        """Frames, read once the upgrade is answered; until then, kept (bounded)."""
        if self.handshaking:
            self._early_data(data)
            return
        if self.close_received:
            return
        buffer = self.pending
        if buffer is None:
            buffer = bytearray(data)
        else:
            buffer += data
        try:
            frames, used = read_frames(buffer, self.endpoint.max_frame_bytes)
        except FrameError as exc:
            self.pending = None
            self.close(exc.code, exc.reason)
            return
        del buffer[:used]
        self.pending = buffer or None
        for opcode, fin, payload in frames:
            self._on_frame(opcode, fin, payload)
            if self.close_received or self.transport is None or self.transport.is_closing():
                return

    def eof_received(self) -> bool | None:
        """The client half-closed: close our side too."""
        return None

    def shutdown(self) -> None:
        """uvicorn is stopping: tell the client to come back later."""
        self.close(closecodes.GOING_AWAY, "server restarting")

    # --- handshake and authentication -----------------------------------------------------
    def upgrade_request(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], http_version: str
    ) -> None:
        """The upgrade request as uvicorn's HTTP parser read it (api/slowclients.py)."""
        try:
            request = read_upgrade(method, target, http_version, headers)
        except HandshakeRefusal as refusal:
            self._reject(refusal.status, refusal.text, refusal.headers)
            return
        self._on_request(request)

    def _early_data(self, data: bytes) -> None:
        """Bytes before the answer (a client that does not wait for it; no browser): read as
        frames once the upgrade is answered, so they cannot overtake it."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.pending is None:
            self.pending = bytearray()
        self.pending += data
        if len(self.pending) > 2 * self.endpoint.max_frame_bytes:
            self.pending = None
            self.transport.close()

    def _on_request(self, request: UpgradeRequest) -> None:
        endpoint = self.endpoint
        if request.path != EVENTS_PATH:
            self._reject(HTTPStatus.NOT_FOUND, "no such WebSocket endpoint")
            return
        if endpoint.firewall is not None:
            # Network controls (api/firewall.py): the real client, then the firewall's verdict.
            self.address, verdict = socket_admission(endpoint.firewall, self.ip, request.headers)
            self.ip = str(self.address) if self.address is not None else self.ip
            if not verdict.allowed:
                self._reject(HTTPStatus.FORBIDDEN, f"network_not_allowed (rule: {verdict.rule})")
                return
        origin = request.header(b"origin")
        if origin is not None and origin.rstrip("/") not in endpoint.allowed_origins:
            self._reject(HTTPStatus.FORBIDDEN, "cross-origin WebSocket connections are refused")
            return
        since = _parse_since(request.query)
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

    async def _authenticate_then_accept(self, request: UpgradeRequest, secret: str) -> None:
        actor = await self._authenticate(secret)
        if actor is None:
            self._reject(HTTPStatus.UNAUTHORIZED, "invalid or expired credentials")
            return
        if (refusal := self._role_refusal(actor)) is not None:
            self._reject(HTTPStatus.FORBIDDEN, refusal)
            return
        self.secret = secret
        # The response waits for hello (and caught_up, if nothing is missed): one write.
        greeting = self._accept(request, hold=True)
        await self._open(actor, greeting)

    async def _authenticate(self, secret: str) -> Actor | None:
        try:
            # Queue behind the other handshakes instead of exhausting the connection pool.
            async with self.endpoint.realtime.database_gate:
                actor = await self.endpoint.services.sessions.authenticate(secret)
        except CourtyardError:
            return None
        if not actor.has_scope("read") or actor.enrolment_required:
            # A user who must enrol in two-factor authentication gets no events until then.
            return None
        return actor

    def _accept(self, request: UpgradeRequest, *, hold: bool = False) -> bytes:
        """Answer the upgrade request; with ``hold``, return the 101's bytes instead of sending
        them (the connection sends them with its first frames)."""
        if not self.handshaking or self.transport is None or self.transport.is_closing():
            return b""
        self.handshaking = False
        self.accepted = True
        answer = switching_protocols(request.key)
        early, self.pending = self.pending, None
        if hold and not early:
            return answer
        # Frames the client sent before our answer: whatever they cause must follow the
        # answer on the wire.
        self.transport.write(answer)
        if early:
            self.data_received(bytes(early))
        return b""

    def _reject(
        self, status: HTTPStatus, text: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        if not self.handshaking or self.transport is None:
            return
        self.handshaking = False
        self.pending = None
        # One line per refusal, with what was wrong and from where (an accepted socket logs
        # nothing: 5,000 lines in a reconnect storm, ADR 0025).
        logger.info("event socket refused from %s: %d %s", self.ip or "?", status.value, text)
        self.transport.write(refusal_response(status, text, headers))
        self.transport.close()

    def _auth_timed_out(self) -> None:
        if self.conn is None:
            self.close(closecodes.UNAUTHENTICATED, "authenticate within the first seconds")

    async def _first_frame_auth(self, token: str) -> None:
        actor = await self._authenticate(token)
        if actor is None:
            self.close(closecodes.UNAUTHENTICATED, "invalid or expired credentials")
            return
        if (refusal := self._role_refusal(actor)) is not None:
            self.close(closecodes.POLICY_VIOLATION, refusal)
            return
        self.secret = token
        await self._open(actor)

    def _role_refusal(self, actor: Actor) -> str | None:
        """The firewall's per-role rules, once the user is known (api/firewall.py)."""
        firewall = self.endpoint.firewall
        if firewall is None or not firewall.policy.has_role_rules:
            return None
        verdict = firewall.judge(self.address, SOCKET_SURFACES, actor.role.value, stage="role")
        return None if verdict.allowed else f"network_not_allowed (rule: {verdict.rule})"

    async def _open(self, actor: Actor, greeting: bytes = b"") -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        transport = self.transport
        if transport is None or transport.is_closing() or self.close_sent:
            return
        realtime = self.endpoint.realtime
        # The outbound-buffer cap is the transport's high-water mark (see Connection).
        transport.set_write_buffer_limits(
            high=realtime.options.max_buffer_bytes, low=realtime.options.max_buffer_bytes // 4
        )
        self.conn = Connection(
            connection_id=realtime.new_connection_id(),
            transport=transport,
            user_id=actor.user_id,
            is_guest=actor.is_guest,
            ip=self.ip,
            closer=self._close_from_hub,
            session_id=actor.session_id,
            token_id=actor.token_id,
            max_buffer=realtime.options.max_buffer_bytes,
            greeting=greeting,
        )
        await realtime.open(self.conn, self.pending_since)

    # --- frames from the client -----------------------------------------------------------
    def _on_frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if self.conn is not None:
            self.conn.last_received = time.monotonic()
        if opcode in (OP_TEXT, OP_CONTINUATION):
            self._on_data(opcode, fin, payload)
        elif opcode == OP_PING:
            if self.transport is not None and not self.close_sent:
                self._send_raw(pong_frame(payload))
        elif opcode == OP_CLOSE:
            self._on_close_frame(payload)
        elif opcode == OP_BINARY:
            self.close(closecodes.UNSUPPORTED_DATA, "only text frames are accepted")
        # pongs only refresh last_received

    def _on_data(self, opcode: int, fin: bool, payload: bytes) -> None:
        if (opcode == OP_CONTINUATION) != (self.fragments is not None):
            self.close(closecodes.PROTOCOL_ERROR, "unexpected continuation or missing one")
            return
        self.fragment_size += len(payload)
        if self.fragment_size > self.endpoint.max_frame_bytes:
            self.close(closecodes.MESSAGE_TOO_BIG, "message too big")
            return
        if not fin:
            if self.fragments is None:
                self.fragments = []
            self.fragments.append(payload)
            return
        data = b"".join([*self.fragments, payload]) if self.fragments is not None else payload
        self.fragments = None
        self.fragment_size = 0
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.close(closecodes.INVALID_PAYLOAD, "text frames must be UTF-8")
            return
        self._on_message(text)

    def _on_close_frame(self, payload: bytes) -> None:
        self.close_received = True
        if self.conn is not None:
            self.conn.release()
            self.conn.mark_closed()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.close_sent:
            # Echo the client's code (RFC 6455 5.5.1), then the server closes TCP first.
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else closecodes.NORMAL
            transport.write(close_frame(code if 1000 <= code < 5000 else closecodes.NORMAL))
            self.close_sent = True
        transport.close()

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
            limits = endpoint.limits
            # Per user over all their sockets in this process (services/ratelimit.py).
            if limits is None or self.conn is None:
                return True
            if limits.allow_frame(self.conn.user_id, self.address):
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
            self._on_unreadable(text, exc)
            return
        if isinstance(message, MessageSend):
            # Not counted against the frame rate: sends have their own limits (the pending
            # cap here, the per-user write limit in the intake).
            self._queue_send(message)
            return
        if not self._take_token():
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

    def _on_unreadable(self, text: str, exc: Exception) -> None:
        is_send, key = unreadable_send_id(text)
        if is_send and self.conn is not None:
            # A send with a missing or mistyped field: answered like HTTP's 422, and the
            # socket stays as it is (not a protocol violation).
            self._send_error(
                key, MalformedRequest(f"{exc}"[:200], code="validation_failed"), status=422
            )
            return
        if self._take_token():
            self._violation("invalid_message", f"unreadable message: {exc}"[:200])

    # --- sending messages over the socket (docs/adr/0014) ---------------------------------
    def _queue_send(self, message: MessageSend) -> None:
        if self.conn is None:
            self._violation("unauthenticated", "send an auth message first")
            return
        if self.unacked >= self.endpoint.max_pending_sends:
            self._send_error(
                message.client_message_id,
                RateLimited(
                    f"at most {self.endpoint.max_pending_sends} sends may wait for their "
                    "acknowledgement on one connection",
                    code="too_many_pending_sends",
                    retry_after=1,
                ),
            )
            return
        self.unacked += 1
        sends = self.sends
        if not sends:
            # Nothing queued ahead: when nothing needs awaiting (credential checked within
            # the second, no rate limits), the send is handed over now, without a task.
            actor = self._checked_sender()
            if actor is not None:
                self._submit(actor, message)
                return
        if sends is None:
            sends = self.sends = collections.deque()
        sends.append(message)
        if len(sends) == 1:
            self._spawn(self._intake())

    async def _intake(self) -> None:
        """Hand queued sends to the message service in the order they arrived. Only the
        checks before queueing are awaited here; the commit is awaited by a callback, so a
        connection keeps many sends in one group commit."""
        sends = self.sends
        assert sends is not None
        while sends:
            message = sends[0]
            try:
                actor = await self._sender()
            except Exception as exc:  # every failure is answered (see _refuse)
                self._refuse(message.client_message_id, exc)
            else:
                self._submit(actor, message)
            sends.popleft()

    def _submit(self, actor: Actor, message: MessageSend) -> None:
        try:
            self.endpoint.services.messages.submit_message(
                actor,
                message.channel_id,
                message.text,
                functools.partial(self._acknowledge, message.client_message_id),
                client_message_id=message.client_message_id,
                thread_root_id=message.thread_root_id,
                file_ids=message.file_ids,
            )
        except Exception as exc:  # every failure is answered (see _refuse)
            self._refuse(message.client_message_id, exc)

    def _refuse(self, client_message_id: str | None, exc: Exception) -> None:
        """Answer a send that failed before it was queued: its error, or a 500 for a bug."""
        self.unacked -= 1
        if isinstance(exc, CourtyardError):
            self._send_error(client_message_id, exc)
            return
        logger.error("event socket send failed", exc_info=exc)
        self._send_error(
            client_message_id,
            CourtyardError("the message could not be sent", code="internal_error"),
            status=500,
        )

    def _checked_sender(self) -> Actor | None:
        """The sender when :meth:`_sender` would return it without awaiting anything."""
        actor = self.sender
        if actor is None or time.monotonic() - self.sender_checked >= SENDER_RECHECK_SECONDS:
            return None
        limits = self.endpoint.limits
        if limits is not None and limits.enabled:
            return None
        return actor if actor.has_scope("write") else None

    async def _sender(self) -> Actor:
        """The sending user, authenticated now (through the credential cache) and within
        the same limits as an HTTP send."""
        secret = self.secret
        conn = self.conn
        if secret is None or conn is None:
            raise PermissionDenied("this connection cannot send", code="not_signed_in")
        endpoint = self.endpoint
        actor = self.sender
        now = time.monotonic()
        if actor is None or now - self.sender_checked >= SENDER_RECHECK_SECONDS:
            # Hashing the secret and consulting the cache for every send was 10-13 % of the
            # server's CPU in S6; the socket itself is closed at once when its session ends
            # or its user is deactivated, so a re-check a second is as strict as HTTP's cache.
            self.sender = None
            actor = await endpoint.services.sessions.authenticate(secret)
            if actor.ip != self.ip:
                actor = msgspec.structs.replace(actor, ip=self.ip)
            self.sender = actor
            self.sender_checked = now
        if not actor.has_scope("write"):
            raise PermissionDenied("this token lacks the 'write' scope", code="insufficient_scope")
        limits = endpoint.limits
        if limits is not None and limits.enabled:
            await limits.check_address("writes", self.address)
            await limits.check_user("writes", actor.user_id, self.address)
        return actor

    def _acknowledge(self, client_message_id: str, outcome: Sent | BaseException) -> None:
        self.unacked -= 1
        if isinstance(outcome, Sent):
            self._reply(
                ack_frame(
                    client_message_id,
                    outcome.message,
                    created=outcome.created,
                    message_json=outcome.message_json,
                )
            )
        elif isinstance(outcome, CourtyardError):
            self._reply(_error_frame(client_message_id, outcome))
        else:
            logger.error("event socket send failed", exc_info=outcome)
            self._reply(
                _error_frame(
                    client_message_id,
                    CourtyardError("the message could not be sent", code="internal_error"),
                    status=500,
                )
            )

    def _reply(self, frame: bytes) -> None:
        # A batch answers many of a connection's sends at once: one write for all of them,
        # on the next loop turn.
        replies = self.replies
        if replies is None:
            self.replies = [frame]
            self.loop.call_soon(self._flush_replies)
        else:
            replies.append(frame)

    def _flush_replies(self) -> None:
        replies = self.replies
        self.replies = None
        if replies:
            self._send(replies[0] if len(replies) == 1 else b"".join(replies))

    def _send_error(
        self, client_message_id: str | None, error: CourtyardError, *, status: int | None = None
    ) -> None:
        """``message.error``: the fields of the HTTP problem the same refusal would get."""
        self._send(_error_frame(client_message_id, error, status=status))

    async def _watch_presence(self, conn: Connection, user_ids: list[int]) -> None:
        visible = await self.endpoint.services.presence.visible_user_ids(conn.user_id, user_ids)
        if not conn.closed:
            self.endpoint.realtime.watch_presence(conn, frozenset(visible))

    # --- writing and closing --------------------------------------------------------------
    def _send(self, frame: bytes) -> None:
        if self.conn is not None:
            self.conn.write(frame)
        elif self.transport is not None and self.accepted and not self.close_sent:
            self.transport.write(frame)

    def _send_raw(self, frame: bytes) -> None:
        """A control frame, after any frames the connection still holds (even once closed)."""
        assert self.transport is not None
        if self.conn is not None:
            self.conn.release()
        self.transport.write(frame)

    def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` (through the hub's bookkeeping when authenticated)."""
        if self.conn is not None:
            self.conn.close(code, reason)
        else:
            self._close_from_hub(code, reason)

    def _close_from_hub(self, code: int, reason: str) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.accepted:
            transport.close()
            return
        if not self.close_sent:
            self.close_sent = True
            transport.write(close_frame(code, reason))
        if self.close_received:
            transport.close()
            return
        # Wait briefly for the client's closing frame, then drop the connection.
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(self.endpoint.close_timeout, transport.abort)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        if self.tasks is None:
            self.tasks = set()
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self.tasks is not None:
            self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("event socket task failed", exc_info=task.exception())
            self.close(closecodes.INTERNAL_ERROR, "internal error")


def _closed_already(code: int, reason: str) -> None:
    """The closer of a connection whose socket is gone: nothing left to close."""


def _error_frame(
    client_message_id: str | None, error: CourtyardError, *, status: int | None = None
) -> bytes:
    body: dict[str, Any] = {
        "type": "message.error",
        "client_message_id": client_message_id,
        "status": status if status is not None else _status_for(error),
        "code": error.code,
        "detail": error.message,
    }
    if error.field:
        body["field"] = error.field
    if isinstance(error, RateLimited):
        body["retry_after"] = error.retry_after
    return control_frame(body)


def _credentials(request: UpgradeRequest) -> tuple[str | None, bool]:
    header = request.header(b"authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    raw_cookie = request.cookie_header()
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


def _status_for(error: CourtyardError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400
