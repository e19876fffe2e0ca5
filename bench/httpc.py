"""A lean HTTP/1.1 keep-alive client on asyncio protocols (httptools parses responses).

httpx costs a few hundred microseconds of client CPU per request; on a 2-core machine that
would be measured instead of the server. This client does one write per request and parses
the response with httptools (C), nothing more.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from typing import Any

import httptools
import orjson

IP_BIND_ADDRESS_NO_PORT = 24


async def open_socket(host: str, port: int, src_ip: str | None = None) -> socket.socket:
    """A connected non-blocking TCP socket; ``src_ip`` picks the loopback source address.

    IP_BIND_ADDRESS_NO_PORT lets the kernel choose the source port at connect time from the
    whole 4-tuple, so 127.0.0.2-9 give 8 x ~28k ports per destination.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if src_ip:
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((src_ip, 0))
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class HTTPError(Exception):
    """The connection failed before a complete response arrived."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.closed = False
        # The server's own time for the last response (Server-Timing app;dur=), when it says.
        self.server_ms: float | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HTTPError(f"bad response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HTTPError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.server_ms = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 13 and name.lower() == b"server-timing" and value.startswith(b"app;dur="):
            self.server_ms = float(value[8:])

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        body = b"".join(self.body)
        self.body = []
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


class HTTPPool:
    """Up to ``size`` keep-alive connections to one server; requests wait for a free one."""

    def __init__(
        self,
        host: str,
        port: int,
        size: int = 8,
        src_ips: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.size = size
        self.src_ips = list(src_ips)
        self.timeout = timeout
        self._idle: list[_Conn] = []
        self._opened = 0
        self._slots = asyncio.Semaphore(size)
        self._host_header = f"{host}:{port}".encode()

    async def _new(self) -> _Conn:
        src = self.src_ips[self._opened % len(self.src_ips)] if self.src_ips else None
        self._opened += 1
        sock = await open_socket(self.host, self.port, src)
        _, proto = await asyncio.get_running_loop().create_connection(_Conn, sock=sock)
        return proto

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        server_ms: list[float] | None = None,
    ) -> tuple[int, bytes]:
        """(status, body); raises HTTPError, OSError or TimeoutError on transport failure.

        ``server_ms`` collects the server's own time per response from its Server-Timing
        header (the benchmark servers turn it on)."""
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        if token:
            head.append(b"Authorization: Bearer " + token.encode())
        payload = b""
        if body is not None:
            payload = body if isinstance(body, bytes) else orjson.dumps(body)
            head.append(b"Content-Type: application/json")
        if payload or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: " + str(len(payload)).encode())
        raw = b"\r\n".join(head) + b"\r\n\r\n" + payload
        async with self._slots:
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            if conn is None:
                conn = await self._new()
            try:
                async with asyncio.timeout(self.timeout):
                    result = await conn.send(raw)
            except BaseException:
                if conn.transport is not None:
                    conn.transport.abort()
                raise
            if server_ms is not None and conn.server_ms is not None:
                server_ms.append(conn.server_ms)
            if not conn.closed:
                self._idle.append(conn)
            return result

    async def json(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """Request and decode JSON; raises on a non-2xx status."""
        status, data = await self.request(method, path, body, token)
        if status >= 300:
            raise HTTPError(f"{method} {path} -> {status}: {data[:300]!r}")
        return orjson.loads(data) if data else None

    def close(self) -> None:
        """Close idle connections."""
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle = []


def now_ns() -> int:
    """CLOCK_MONOTONIC in ns: the same clock in every process on this machine."""
    return time.monotonic_ns()
