"""A raw WebSocket client that can send what well-behaved libraries refuse to."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from urllib.parse import urlsplit


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame (always masked, as RFC 6455 requires)."""
    first = (0x80 if fin else 0) | opcode
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


class RawSocket:
    """A WebSocket connection driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.response_headers = b""

    @classmethod
    async def open(
        cls,
        ws_url: str,
        *,
        token: str | None = None,
        origin: str | None = None,
        extra_headers: dict[str, str] | None = None,
        receive_buffer: int | None = None,
    ) -> RawSocket:
        """TCP connect and send the upgrade request; reads the response status."""
        parts = urlsplit(ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**22)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if origin:
            lines.append(f"Origin: {origin}")
        for name, value in (extra_headers or {}).items():
            lines.append(f"{name}: {value}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        raw = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        raw.status = int(head.split(b" ", 2)[1])
        raw.response_headers = head
        return raw

    async def send(self, frame: bytes) -> None:
        """Write raw bytes."""
        self.writer.write(frame)
        await self.writer.drain()

    async def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return first & 0x0F, payload

    async def close_code(self, timeout: float = 10.0) -> int | None:
        """Read frames until a close frame (its code) or EOF (None)."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                left = deadline - asyncio.get_running_loop().time()
                opcode, payload = await self.read_frame(max(left, 0.01))
                if opcode == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def abort(self) -> None:
        """Drop the TCP connection."""
        self.writer.transport.abort()


class StalledSocket:
    """A client that completes the handshake and then never reads (a plain blocking socket,
    so no library drains the kernel buffer behind the test's back)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def open(cls, ws_url: str, token: str, *, receive_buffer: int = 4096) -> StalledSocket:
        """Connect, upgrade, and stop reading."""
        parts = urlsplit(ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(10)
        sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        return cls(sock)

    def read_close_code(self, timeout: float = 20.0) -> int | None:
        """Start reading again: skip data frames until a close frame, return its code."""
        self.sock.settimeout(timeout)
        buffer = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                buffer += chunk
                while len(buffer) >= 2:
                    length = buffer[1] & 0x7F
                    offset = 2
                    if length == 126:
                        length, offset = struct.unpack("!H", buffer[2:4])[0], 4
                    elif length == 127:
                        length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
                    if len(buffer) < offset + length:
                        break
                    opcode, payload = buffer[0] & 0x0F, buffer[offset : offset + length]
                    buffer = buffer[offset + length :]
                    if opcode == 0x8:
                        return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (TimeoutError, OSError):
            return None

    def close(self) -> None:
        """Drop the connection."""
        self.sock.close()
