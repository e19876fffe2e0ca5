"""Per-connection limits: slow consumers are evicted without hurting others; connection caps."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from courtyard.realtime import closecodes
from tests.realtime.client import EventClient
from tests.realtime.raw import RawSocket, StalledSocket
from tests.support import DatabaseFactory, org_context


async def test_a_client_that_stops_reading_is_evicted_and_others_keep_pace(
    databases: DatabaseFactory, workdir: Path
) -> None:
    small = {"max_buffer_kib": 16, "socket_send_buffer_kib": 16}
    async with org_context(databases, workdir, realtime=small) as org:
        alice = await org.person("alice")
        bob = await org.person("bob")
        carol = await org.person("carol")
        channel = await alice.create_channel(member_ids=[bob.id, carol.id])
        stalled = await asyncio.to_thread(StalledSocket.open, org.server.ws_url, carol.token)
        healthy = await EventClient.connect(org.server.ws_url, bob.token)
        try:
            text = "x" * 8000
            delays = []
            for n in range(120):
                started = time.monotonic()
                await alice.send(channel["id"], f"{n} {text}")
                frame = await healthy.next_of("message.created", timeout=5)
                delays.append(time.monotonic() - started)
                assert frame["message"]["text"].startswith(f"{n} ")
            stalled_connections = [
                c for c in org.server.services.realtime.hub.connections if c.user_id == carol.id
            ]
            assert all(c.closed for c in stalled_connections), "the stalled socket is evicted"
            assert max(delays) < 2.0, f"healthy client slowed down: {max(delays):.2f}s"
        finally:
            await healthy.close()
            stalled.close()


async def test_stalled_client_hears_4008_when_it_reads_again(
    databases: DatabaseFactory, workdir: Path
) -> None:
    small = {"max_buffer_kib": 16, "socket_send_buffer_kib": 16}
    async with org_context(databases, workdir, realtime=small) as org:
        alice = await org.person("alice")
        carol = await org.person("carol")
        channel = await alice.create_channel(member_ids=[carol.id])
        stalled = await asyncio.to_thread(StalledSocket.open, org.server.ws_url, carol.token)
        for n in range(80):
            await alice.send(channel["id"], f"{n} " + "y" * 8000)
        await asyncio.sleep(0.2)
        code = await asyncio.to_thread(stalled.read_close_code)
        stalled.close()
        assert code == closecodes.SLOW_CONSUMER


async def test_connection_caps_per_address_and_per_user(
    databases: DatabaseFactory, workdir: Path
) -> None:
    caps = {"max_connections_per_ip": 3, "max_connections_per_user": 2}
    async with org_context(databases, workdir, realtime=caps) as org:
        alice = await org.person("alice")
        bob = await org.person("bob")
        first = await EventClient.connect(org.server.ws_url, alice.token)
        second = await EventClient.connect(org.server.ws_url, alice.token)
        third = await EventClient.connect(org.server.ws_url, alice.token, wait_caught_up=False)
        assert await third.closed_with() == closecodes.TRY_AGAIN_LATER
        fourth = await EventClient.connect(org.server.ws_url, bob.token)
        refused = await RawSocket.open(org.server.ws_url, token=bob.token)
        assert refused.status == 429
        refused.abort()
        await second.close()
        await asyncio.sleep(0.2)
        again = await EventClient.connect(org.server.ws_url, bob.token)
        for client in (first, fourth, again):
            await client.close()
