"""A request leaves no reference cycles behind on the server (docs/adr/0022).

Objects in a cycle are freed only by the cyclic garbage collector, whose pauses land on
whatever request or delivery is running. When every request's cycle, scope and response state
formed one (about twenty objects a request), S5 and S6 saw a collection of 10-15 ms every
fraction of a second. Refcounting frees a request's objects as soon as it is answered.

The server runs in this process (tests/support.py), so the collector is asked directly: with
``DEBUG_SAVEALL`` it keeps what it would have freed, and nothing of the server's may be among
it. The test client's own cycles (httpx, httpcore, anyio) are not the server's business.
"""

from __future__ import annotations

import asyncio
import gc

from tests.realtime.raw import RawSocket
from tests.support import Org, Person

SERVER_PACKAGES = ("courtyard", "uvicorn", "litestar", "starlette", "msgspec")


async def _server_garbage_after(requests: object) -> list[str]:
    """The server's objects the collector finds as garbage while ``requests`` runs."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await requests  # type: ignore[misc]
        await asyncio.sleep(0.05)  # let the server finish each response's bookkeeping
        gc.collect()
        found = [type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        del gc.garbage[:]
    return [name for name in found if name.startswith(SERVER_PACKAGES)]


async def test_reads_and_writes_leave_no_cycles(org: Org, bob: Person) -> None:
    channel = await bob.create_channel()
    sent = await bob.send(channel["id"], "warm-up")  # first-use caches are not per request

    async def requests() -> None:
        for _ in range(5):
            page = await bob.get(f"/api/v1/channels/{channel['id']}/messages?limit=50")
            assert page.status_code == 200
            await bob.send(channel["id"], "hello")
        reacted = await bob.put(f"/api/v1/messages/{sent['id']}/reactions/%F0%9F%91%8D")
        assert reacted.status_code in (200, 201, 204), reacted.text
        missing = await bob.get("/api/v1/channels/999999999/messages")
        assert missing.status_code == 404

    assert await _server_garbage_after(requests()) == []


async def test_event_sockets_leave_no_cycles(org: Org, bob: Person) -> None:
    """An upgraded connection's HTTP protocol, its parser and the socket's connection are
    freed when the socket closes (a reconnect storm made 25 objects of garbage a socket)."""

    async def sockets() -> None:
        for _ in range(5):
            raw = await RawSocket.open(org.server.ws_url, token=bob.token)
            assert raw.status == 101
            for _ in range(2):  # hello, caught_up
                await raw.read_frame()
            raw.abort()
        await asyncio.sleep(0.2)  # the server sees each socket go

    assert await _server_garbage_after(sockets()) == []
