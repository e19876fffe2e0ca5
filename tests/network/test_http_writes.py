"""A small response leaves a real `courtyard serve` in one write (api/http_writes.py), and the
cases where the head must not wait for a body still work: HEAD, 100-continue, pipelining,
Connection: close.

The write count comes from the kernel (``syscw`` in /proc/<pid>/io), not from the server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.processes import ServerProcess
from tests.support import DatabaseFactory

REQUESTS = 60


@pytest.fixture
async def server(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(await databases.create(), workdir / f"writes-{secrets.token_hex(3)}")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def write_calls(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc/<pid>/io")


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: (head, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


async def test_small_responses_leave_in_one_write_each(server: ServerProcess) -> None:
    assert server.process is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = b"GET /healthz HTTP/1.1\r\nHost: courtyard\r\n\r\n"
    try:
        for _ in range(5):  # warm up: first-request work (imports, caches) may log or write
            writer.write(request)
            await read_response(reader)
        before = write_calls(server.process.pid)
        for _ in range(REQUESTS):
            writer.write(request)
            head, body = await asyncio.wait_for(read_response(reader), 10)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert body
        writes = write_calls(server.process.pid) - before
    finally:
        writer.close()
    # Two writes per response (head, then body) would be 2 x REQUESTS; allow a few for
    # unrelated background writes of the process.
    assert writes <= REQUESTS + 10, f"{writes} write calls for {REQUESTS} responses"


async def test_head_request_gets_its_head_and_the_connection_goes_on(
    server: ServerProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: courtyard\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 "), head
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: courtyard\r\n\r\n")
        head, body = await asyncio.wait_for(read_response(reader), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert body
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order_and_close_is_honoured(
    server: ServerProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"GET /healthz HTTP/1.1\r\nHost: courtyard\r\n\r\n"
            b"GET /no/such/path HTTP/1.1\r\nHost: courtyard\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: courtyard\r\nConnection: close\r\n\r\n"
        )
        statuses = []
        for _ in range(3):
            head, _body = await asyncio.wait_for(read_response(reader), 10)
            statuses.append(head.split(b" ", 2)[1])
        assert statuses == [b"200", b"404", b"200"]
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed after the third
    finally:
        writer.close()


async def test_expect_100_continue_is_answered_before_the_body(server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    body = b'{"login": "nobody", "password": "wrong password 123"}'
    try:
        writer.write(
            b"POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: courtyard\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        writer.write(body)
        head, answer = await asyncio.wait_for(read_response(reader), 10)
        assert head.split(b" ", 2)[1] in (b"400", b"401"), head
        assert b"problem+json" in head.lower()
        assert answer.startswith(b"{")
    finally:
        writer.close()
