"""The event socket's opening handshake, byte for byte: malformed upgrade requests get a clear
HTTP refusal, a good one gets RFC 6455's answer, and the greeting leaves in one write."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

import pytest

from tests.support import Org, Person

# RFC 6455 section 1.3's worked example.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _request(
    target: str,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    token: str | None = None,
    key: str | None = SAMPLE_KEY,
    ws_version: str = "13",
    extra: str = "",
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1", "Upgrade: websocket"]
    lines.append("Connection: Upgrade")
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    lines.append(f"Sec-WebSocket-Version: {ws_version}")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("latin-1") + body


async def _exchange(ws_url: str, request: bytes) -> tuple[bytes, bytes]:
    """Send ``request``; return the response head and whatever came with it in the first
    read after the head."""
    parts = urlsplit(ws_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        rest = b""
        with contextlib.suppress(TimeoutError):
            rest = await asyncio.wait_for(reader.read(65536), 2)
        return head, rest
    finally:
        writer.transport.abort()


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def _frames(data: bytes) -> list[dict[str, object]]:
    """The JSON text frames in ``data`` (unmasked server frames)."""
    frames = []
    while data:
        length = data[1] & 0x7F
        offset = 2
        if length == 126:
            length = int.from_bytes(data[2:4], "big")
            offset = 4
        frames.append(json.loads(data[offset : offset + length]))
        data = data[offset + length :]
    return frames


async def test_a_good_request_gets_the_rfc_accept_key(org: Org, bob: Person) -> None:
    path = urlsplit(org.server.ws_url).path
    head, _ = await _exchange(org.server.ws_url, _request(path, token=bob.token))
    assert _status(head) == 101
    assert f"Sec-WebSocket-Accept: {SAMPLE_ACCEPT}".encode() in head


async def test_the_greeting_leaves_in_one_write(org: Org, bob: Person) -> None:
    """101, hello and caught_up: one write, so one read on loopback gets all three."""
    path = urlsplit(org.server.ws_url).path
    head, rest = await _exchange(org.server.ws_url, _request(path, token=bob.token))
    assert _status(head) == 101
    assert [frame["type"] for frame in _frames(rest)] == ["hello", "caught_up"]


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"key": None}, 400, b"Sec-WebSocket-Key"),
        ({"key": "short"}, 400, b"Sec-WebSocket-Key"),
        ({"method": "POST"}, 405, b"GET"),
        ({"version": "HTTP/1.0"}, 505, b"HTTP/1.0"),
        ({"extra": "Content-Length: 5\r\n", "body": b"hello"}, 400, b"no body"),
        ({"extra": "Transfer-Encoding: chunked\r\n", "body": b"0\r\n\r\n"}, 400, b""),
        # RFC 6455 section 4.4: the versions the server speaks, in a 426.
        ({"ws_version": "8"}, 426, b"Sec-WebSocket-Version: 13"),
        ({"extra": f"Sec-WebSocket-Key: {SAMPLE_KEY}\r\n"}, 400, b"Sec-WebSocket-Key"),
        # Two credentials or two origins are ambiguous: refused, not guessed between.
        ({"extra": "Authorization: Bearer someone-else\r\n"}, 400, b"Authorization"),
        ({"extra": "Origin: http://a.example\r\nOrigin: http://b.example\r\n"}, 400, b"Origin"),
    ],
)
async def test_malformed_upgrade_requests_are_refused(
    org: Org, bob: Person, change: dict[str, object], status: int, says: bytes
) -> None:
    path = urlsplit(org.server.ws_url).path
    head, rest = await _exchange(
        org.server.ws_url,
        _request(path, token=bob.token, **change),  # type: ignore[arg-type]
    )
    assert _status(head) == status, head
    assert says in head + rest


async def test_a_non_ascii_target_is_refused(org: Org, bob: Person) -> None:
    path = urlsplit(org.server.ws_url).path
    head, _ = await _exchange(org.server.ws_url, _request(path + "?since=\xe9", token=bob.token))
    assert 400 <= _status(head) < 500, head


async def test_the_server_still_answers_after_refusals(org: Org, bob: Person) -> None:
    path = urlsplit(org.server.ws_url).path
    for _ in range(3):
        head, _ = await _exchange(org.server.ws_url, _request(path, token=bob.token, key=None))
        assert _status(head) == 400
    head, rest = await _exchange(org.server.ws_url, _request(path, token=bob.token))
    assert _status(head) == 101
    assert _frames(rest)[0]["type"] == "hello"


async def test_a_refusal_is_logged_once_and_an_accepted_socket_is_not(
    org: Org, bob: Person, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators see why a socket was refused; a reconnect storm writes no line per socket
    (the websockets library logged "connection open" for each, ADR 0025)."""
    path = urlsplit(org.server.ws_url).path
    caplog.set_level("DEBUG")
    head, _ = await _exchange(org.server.ws_url, _request(path, token=bob.token, ws_version="8"))
    assert _status(head) == 426
    head, _ = await _exchange(org.server.ws_url, _request(path, token=bob.token))
    assert _status(head) == 101
    socket_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("websockets", "courtyard.api.websocket"))
    ]
    assert len(socket_lines) == 1, socket_lines
    assert "426" in socket_lines[0] and "Sec-WebSocket-Version" in socket_lines[0]


async def test_frames_sent_before_the_answer_are_read_after_it(org: Org, bob: Person) -> None:
    """A client that does not wait for the 101 (RFC 6455 section 4.1 says it must): what it
    sent early is read as frames once the upgrade is answered, and answered after it."""
    assert org.server.application is not None
    gate = org.server.application.endpoint.realtime.database_gate
    held = 0
    while not gate.locked():  # authentication waits for the gate: the socket stays unanswered
        await gate.acquire()
        held += 1
    parts = urlsplit(org.server.ws_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(_request(parts.path, token=bob.token))
        await writer.drain()
        await asyncio.sleep(0.2)
        mask = b"\x01\x02\x03\x04"
        payload = b"early"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        writer.write(bytes([0x89, 0x80 | len(payload)]) + mask + masked)  # a ping
        await writer.drain()
        with pytest.raises(TimeoutError):  # still unanswered: the ping came early
            await asyncio.wait_for(reader.read(1), 0.2)
    finally:
        for _ in range(held):
            gate.release()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert _status(head) == 101
        opcodes: list[int] = []
        pong = b""
        while 0xA not in opcodes:
            first, second = await asyncio.wait_for(reader.readexactly(2), 10)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            body = await reader.readexactly(length)
            opcodes.append(first & 0x0F)
            if first & 0x0F == 0xA:
                pong = body
        assert pong == payload
    finally:
        writer.transport.abort()
