"""Slowloris and slow POST against a real `courtyard serve` process: the slow connections are
closed within the configured deadlines while other clients keep being served.

Bounded: at most SLOW connections, each trickling for at most LIMIT seconds."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.processes import ServerProcess
from tests.support import DatabaseFactory

HEADER_TIMEOUT = 2.0
BODY_GRACE = 2.0
SLOW = 40
LIMIT = 15.0  # no trickle goes on longer than this, whatever the server does


@pytest.fixture
async def server(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(
        await databases.create(),
        workdir / f"slow-{secrets.token_hex(3)}",
        extra_env={
            "COURTYARD_SERVER__HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
            "COURTYARD_SERVER__BODY_TIMEOUT_SECONDS": str(BODY_GRACE),
            "COURTYARD_SERVER__MIN_BODY_BYTES_PER_SECOND": "1000",
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def trickle(port: int, head: bytes, drip: bytes) -> tuple[float, bytes]:
    """Send ``head``, then ``drip`` one byte every 0.1 s until the server closes the
    connection; returns how long that took and what the server answered."""
    # The clock starts before connecting: the server's deadline runs from its accept, which
    # can come before this (busy) loop gets back from open_connection.
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    answer = b""

    async def drip_bytes() -> None:
        for byte in drip:
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()

    dripping = asyncio.create_task(drip_bytes())
    try:
        async with asyncio.timeout(LIMIT):
            while chunk := await reader.read(65536):
                answer += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        elapsed = time.monotonic() - started
        dripping.cancel()
        writer.close()
    return elapsed, answer


async def served_meanwhile(url: str, until: asyncio.Event) -> list[float]:
    """Latencies of a well-behaved client polling /api/v1/setup while the attack runs."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while not until.is_set() and len(latencies) < 500:
            started = time.monotonic()
            response = await client.get("/api/v1/setup")
            assert response.status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
    return latencies


async def attack(
    server: ServerProcess, head: bytes, drip: bytes
) -> tuple[list[float], list[bytes], list[float]]:
    done = asyncio.Event()
    others = asyncio.create_task(served_meanwhile(server.url, done))
    results = await asyncio.gather(*(trickle(server.port, head, drip) for _ in range(SLOW)))
    done.set()
    latencies = await others
    return [r[0] for r in results], [r[1] for r in results], latencies


async def test_slowloris_connections_are_closed_and_others_are_served(
    server: ServerProcess,
) -> None:
    head = b"GET /api/v1/setup HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    drip = b"X-Slow: " + b"a" * 400  # 40 s at one byte per 0.1 s: never completes by itself
    closed_after, answers, latencies = await attack(server, head, drip)
    assert max(closed_after) < HEADER_TIMEOUT + 2.0, closed_after
    assert min(closed_after) >= HEADER_TIMEOUT - 0.2, closed_after
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
    assert len(latencies) >= 10
    assert max(latencies) < 1.0, latencies
    # And a connection that merely sits there without a byte is closed too.
    idle, _ = await trickle(server.port, b"", b"")
    assert idle < HEADER_TIMEOUT + 2.0


async def test_slow_post_bodies_are_cut_off_and_others_are_served(server: ServerProcess) -> None:
    head = (
        b"POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    drip = b"{" + b" " * 400
    closed_after, answers, latencies = await attack(server, head, drip)
    # Grace, plus the few bytes sent at the minimum rate, plus scheduling slack.
    assert max(closed_after) < BODY_GRACE + 2.5, closed_after
    assert min(closed_after) >= BODY_GRACE - 0.2, closed_after
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
    assert len(latencies) >= 10
    assert max(latencies) < 1.0, latencies
    # A normal POST is not affected.
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        response = await client.post(
            "/api/v1/auth/sign-in", json={"login": "nobody", "password": "wrong password here"}
        )
        assert response.status_code == 401


async def test_a_client_that_stops_reading_is_dropped(
    databases: DatabaseFactory, workdir: Path
) -> None:
    send_timeout = 2.0
    server = ServerProcess(
        await databases.create(),
        workdir / f"slowread-{secrets.token_hex(3)}",
        extra_env={"COURTYARD_SERVER__SEND_TIMEOUT_SECONDS": str(send_timeout)},
    )
    server.start()
    try:
        token = server.setup_token()
        size = 24 * 1024 * 1024
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            owner = await client.post(
                "/api/v1/setup",
                json={
                    "setup_token": token,
                    "organization_name": "Slow",
                    "username": "owner",
                    "password": "a long passphrase for the owner",
                    "session_type": "token",
                },
            )
            assert owner.status_code == 201, owner.text
            auth = {"Authorization": f"Bearer {owner.json()['token']}"}
            upload = await client.post(
                "/api/v1/files",
                headers=auth,
                files={"file": ("big.bin", secrets.token_bytes(size), "application/octet-stream")},
            )
            assert upload.status_code == 201, upload.text
            path = f"/api/v1/files/{upload.json()['id']}/content"
            # A reader that reads gets all of it.
            assert len((await client.get(path, headers=auth)).content) == size

            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
            request = (
                f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n\r\n"
            )
            await asyncio.get_running_loop().sock_sendall(sock, request.encode())
            # Read nothing for longer than the deadline (this wait *is* the behaviour under test),
            # checking meanwhile that other clients are served.
            started = time.monotonic()
            while time.monotonic() - started < send_timeout + 2.0:
                assert (await client.get("/healthz")).status_code == 200
                await asyncio.sleep(0.25)
            received = 0
            with contextlib.suppress(ConnectionResetError):
                async with asyncio.timeout(LIMIT):
                    while chunk := await asyncio.get_running_loop().sock_recv(sock, 1 << 20):
                        received += len(chunk)
            sock.close()
            assert 0 < received < size  # what the kernel had buffered, then the end
    finally:
        server.stop()


async def test_a_request_waiting_unread_in_the_kernel_is_not_counted_as_slow() -> None:
    """The header deadline spares a client whose request has arrived but not been read yet
    (a server loop busy with a connection storm): ``unread_bytes`` sees it in the kernel."""
    from courtyard.api.slowclients import unread_bytes

    accepted: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()
    received = bytearray()

    class Holding(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()  # like a loop that has not got round to this socket
            accepted.set_result(transport)

        def data_received(self, data: bytes) -> None:
            received.extend(data)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Holding, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        transport = await asyncio.wait_for(accepted, 5)
        assert unread_bytes(transport) == 0
        request = b"GET /api/v1/events HTTP/1.1\r\nHost: courtyard\r\n\r\n"
        writer.write(request)
        await writer.drain()
        for _ in range(100):
            if unread_bytes(transport) == len(request):
                break
            await asyncio.sleep(0.01)
        assert unread_bytes(transport) == len(request)
        transport.resume_reading()
        for _ in range(100):
            if len(received) == len(request):
                break
            await asyncio.sleep(0.01)
        assert bytes(received) == request
        assert unread_bytes(transport) == 0
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
