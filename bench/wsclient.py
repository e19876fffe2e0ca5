"""A lean WebSocket client for the event socket: counts frames, parses only probes.

Most connections only walk frame headers and count text frames (no JSON, no copies of the
payload). One connection in ``probe_every`` also looks into each text frame for the
scheduled send time the publisher wrote into the message text (``bench <ns> ...``) and records
the delivery latency against CLOCK_MONOTONIC, which every process on the machine shares.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import orjson

HANDSHAKE_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
PONG_EMPTY = b"\x8a\x80\x00\x00\x00\x00"  # masked (zero key) empty pong
CLOSE_1000 = b"\x88\x82\x00\x00\x00\x00\x03\xe8"
MARK = b'"text":"bench '
MAX_SAMPLES = 400_000


def client_text_frame(payload: bytes) -> bytes:
    """A masked text frame (zero mask key: the bytes stay as they are)."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, 0x80 | length)) + b"\x00\x00\x00\x00" + payload
    return bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big") + b"\x00\x00\x00\x00" + payload


def frame_bounds(data: bytes, i: int, n: int) -> tuple[int, int, int] | None:
    """The unmasked server frame at ``data[i:]``: (header size, payload length, end), or
    None while its header or payload has not fully arrived."""
    length = data[i + 1] & 0x7F
    if length < 126:
        head = 2
    elif length == 126:
        if n - i < 4:
            return None
        length = (data[i + 2] << 8) | data[i + 3]
        head = 4
    else:
        if n - i < 10:
            return None
        length = int.from_bytes(data[i + 2 : i + 10], "big")
        head = 10
    end = i + head + length
    return None if end > n else (head, length, end)


class Group:
    """Counters shared by every connection of one generator process."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.latencies_ns: list[int] = []
        self.live = 0
        self.failed: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.hello_ns: list[int] = []
        self.ready_ns: list[int] = []
        self.position = 0
        self.pending = 0
        self.done: asyncio.Event = asyncio.Event()

    def reset(self) -> None:
        """Zero the counters of the measurement window."""
        self.frames = 0
        self.bytes = 0
        self.latencies_ns = []
        self.closed = Counter()

    def settled(self) -> None:
        self.pending -= 1
        if self.pending <= 0:
            self.done.set()


class EventClient(asyncio.Protocol):
    """One event-socket connection."""

    __slots__ = (
        "group",
        "live",
        "path",
        "probe",
        "rest",
        "scheduled_ns",
        "settled",
        "token",
        "transport",
        "upgraded",
    )

    def __init__(
        self, group: Group, token: str, host: str, *, probe: bool, since: int | None, sched: int
    ) -> None:
        self.group = group
        self.token = token
        self.probe = probe
        self.path = f"/api/v1/events?since={since}" if since is not None else "/api/v1/events"
        self.path = f"GET {self.path} HTTP/1.1\r\nHost: {host}\r\n"
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.upgraded = False
        self.live = False
        self.settled = False
        self.scheduled_ns = sched

    # --- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(
            (
                self.path + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {self.token}\r\n"
            ).encode()
            + b"Sec-WebSocket-Key: "
            + HANDSHAKE_KEY
            + b"\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.live:
            self.live = False
            self.group.live -= 1
        self._settle("closed before ready")
        self.transport = None

    def _settle(self, failure: str | None) -> None:
        if self.settled:
            return
        self.settled = True
        if failure is not None:
            self.group.failed[failure] += 1
        self.group.settled()

    def data_received(self, data: bytes) -> None:
        group = self.group
        group.bytes += len(data)
        if self.rest:
            data = self.rest + data
            self.rest = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.rest = data
                return
            status = data[9:12]
            if status != b"101":
                self._settle(f"http {status.decode(errors='replace')}")
                if self.transport is not None:
                    self.transport.close()
                return
            self.upgraded = True
            data = data[end + 4 :]
        n = len(data)
        i = 0
        while n - i >= 2:
            bounds = frame_bounds(data, i, n)
            if bounds is None:
                break
            head, length, end = bounds
            opcode = data[i] & 0x0F
            if opcode == 1:
                group.frames += 1
                if self.probe or not self.live:
                    self._text(data[i + head : end])
            elif opcode == 9:
                if self.transport is not None:
                    self.transport.write(PONG_EMPTY)
            elif opcode == 8:
                code = int.from_bytes(data[i + head : i + head + 2], "big") if length >= 2 else 0
                group.closed[str(code)] += 1
                if self.transport is not None:
                    self.transport.write(CLOSE_1000)
                    self.transport.close()
                self._settle(f"close {code}")
                return
            i = end
        if i < n:
            self.rest = data[i:]

    def _text(self, payload: bytes) -> None:
        if self.live:
            at = payload.find(MARK)
            if at >= 0 and b'"message.created"' in payload[:64]:
                start = at + len(MARK)
                sent = int(payload[start : start + 19])
                samples = self.group.latencies_ns
                if len(samples) < MAX_SAMPLES:
                    samples.append(time.monotonic_ns() - sent)
            return
        if payload.startswith(b'{"type":"hello"'):
            self.group.hello_ns.append(time.monotonic_ns() - self.scheduled_ns)
        elif payload.startswith(b'{"type":"caught_up"'):
            self.live = True
            group = self.group
            group.live += 1
            group.ready_ns.append(time.monotonic_ns() - self.scheduled_ns)
            position = orjson.loads(payload).get("position", 0)
            group.position = max(group.position, position)
            self._settle(None)

    # --- commands -------------------------------------------------------------------------
    def send_json(self, message: dict[str, Any]) -> None:
        """Send one client message (typing, ping...)."""
        if self.transport is not None and self.live:
            self.transport.write(client_text_frame(orjson.dumps(message)))

    def close(self) -> None:
        """Close politely (close frame, then TCP)."""
        if self.transport is not None:
            self.transport.write(CLOSE_1000)
            self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection at once (a crashed client or a network cut)."""
        if self.transport is not None:
            self.transport.abort()


ACK_HEAD = b'{"type":"message.ack","client_message_id":"'
ERROR_HEAD = b'{"type":"message.error","client_message_id":'


class SendClient(asyncio.Protocol):
    """One event socket that sends messages (``message.send``) and times their answers.

    Each send's ``client_message_id`` is ``<tag><counter>-<scheduled ns>``, so an ack carries
    its own scheduled time back and the client keeps no table (the counter keeps sends
    scheduled in the same nanosecond distinct). Only the first bytes of each text frame
    are looked at; ``message.created`` and everything else are just counted.
    """

    def __init__(self, token: str, host: str, channel_id: int, tag: str) -> None:
        self.token = token
        self.request = f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n"
        self.prefix = (
            b'{"type":"message.send","channel_id":'
            + str(channel_id).encode()
            + b',"text":"bench socket send xxxxxxxxxxxxxxxxxxxxxxxx","client_message_id":"'
            + tag.encode()
            + b"-"
        )
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight = 0
        self.sent = 0
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.frames = 0
        self.latencies_ns: list[int] = []
        self.on_answers: Any = None  # called with the number of answers in one read
        self.closed_with: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(
            (
                self.request + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {self.token}\r\n"
            ).encode()
            + b"Sec-WebSocket-Key: "
            + HANDSHAKE_KEY
            + b"\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.closed_with is None:
            self.closed_with = "connection lost"
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(self.closed_with))

    def send_many(self, scheds: list[int]) -> None:
        """Sends scheduled at ``scheds`` (ns), in one write."""
        if self.transport is None or not scheds:
            return
        first = self.sent
        self.sent += len(scheds)
        self.in_flight += len(scheds)
        prefix = self.prefix
        self.transport.write(
            b"".join(
                client_text_frame(prefix + b'%d-%d"}' % (first + n, sched))
                for n, sched in enumerate(scheds)
            )
        )

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
            self.rest = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.rest = data
                return
            if data[9:12] != b"101":
                self.closed_with = f"http {data[9:12].decode(errors='replace')}"
                if self.transport is not None:
                    self.transport.close()
                return
            self.upgraded = True
            data = data[end + 4 :]
        n = len(data)
        i = 0
        answers = 0
        now = 0
        while n - i >= 2:
            bounds = frame_bounds(data, i, n)
            if bounds is None:
                break
            head, length, end = bounds
            opcode = data[i] & 0x0F
            start = i + head
            if opcode == 1:
                self.frames += 1
                if data.startswith(ACK_HEAD, start):
                    at = start + len(ACK_HEAD)
                    stop = data.index(b'"', at)
                    sched = int(data[data.rindex(b"-", at, stop) + 1 : stop])
                    now = now or time.monotonic_ns()
                    if len(self.latencies_ns) < MAX_SAMPLES:
                        self.latencies_ns.append(now - sched)
                    self.acked += 1
                    answers += 1
                elif data.startswith(ERROR_HEAD, start):
                    code = orjson.loads(data[start:end]).get("code", "?")
                    self.refused[str(code)] += 1
                    answers += 1
                elif not self.ready.done() and data.startswith(b'{"type":"caught_up"', start):
                    self.ready.set_result(None)
            elif opcode == 9:
                if self.transport is not None:
                    self.transport.write(PONG_EMPTY)
            elif opcode == 8:
                code = int.from_bytes(data[start : start + 2], "big") if length >= 2 else 0
                self.closed_with = f"close {code}"
                if self.transport is not None:
                    self.transport.write(CLOSE_1000)
                    self.transport.close()
                return
            i = end
        if i < n:
            self.rest = data[i:]
        if answers:
            self.in_flight -= answers
            if self.on_answers is not None:
                self.on_answers(self, answers)

    def close(self) -> None:
        """Close politely (close frame, then TCP)."""
        if self.transport is not None:
            self.transport.write(CLOSE_1000)
            self.transport.close()
