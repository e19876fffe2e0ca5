"""The event stream across real server processes: crashes, restarts and two nodes on a bus."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ServerProcess
from tests.realtime.client import EventClient
from tests.support import PASSWORD, DatabaseFactory, service_missing


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ws(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/api/v1/events"


async def _organisation(server: ServerProcess) -> dict[str, Any]:
    """Owner 'owner' plus members alice and bob with bearer tokens, and a channel of both."""
    token = server.setup_token()
    assert token, server.log()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/api/v1/setup",
            json={
                "setup_token": token,
                "organization_name": "E2E",
                "username": "owner",
                "password": PASSWORD,
                "session_type": "token",
            },
        )
        assert response.status_code == 201, response.text
        owner = {"Authorization": f"Bearer {response.json()['token']}"}
        tokens: dict[str, Any] = {}
        for name in ("alice", "bob"):
            created = await client.post(
                "/api/v1/users", headers=owner, json={"username": name, "password": PASSWORD}
            )
            assert created.status_code == 201, created.text
            signed = await client.post(
                "/api/v1/auth/sign-in",
                json={"login": name, "password": PASSWORD, "session_type": "token"},
            )
            tokens[name] = signed.json()["token"]
            tokens[f"{name}_id"] = signed.json()["user"]["id"]
        channel = await client.post(
            "/api/v1/channels",
            headers={"Authorization": f"Bearer {tokens['alice']}"},
            json={"name": "general", "member_ids": [tokens["bob_id"]]},
        )
        tokens["channel"] = channel.json()["id"]
    return tokens


async def _send(url: str, token: str, channel: int, text: str, key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post(
            f"/api/v1/channels/{channel}/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"text": text, "client_message_id": key},
        )
        response.raise_for_status()
        return dict(response.json())


@pytest.mark.slow
async def test_every_acknowledged_message_arrives_after_a_sigkill_and_restart(
    databases: DatabaseFactory, workdir: Path
) -> None:
    server = ServerProcess(await databases.create(), workdir / f"crash-{secrets.token_hex(3)}")
    server.start()
    try:
        org = await _organisation(server)
        bob = await EventClient.connect(_ws(server), org["bob"])
        last_position = 0
        acknowledged: list[int] = []

        async def sender() -> None:
            for n in range(400):
                try:
                    sent = await _send(server.url, org["alice"], org["channel"], f"m{n}", f"k{n}")
                except (httpx.HTTPError, OSError):
                    return
                acknowledged.append(sent["id"])

        task = asyncio.create_task(sender())
        while len(acknowledged) < 20:
            await asyncio.sleep(0.01)
        server.kill()
        await task
        try:
            while True:
                frame = await bob.next(timeout=1)
                if "position" in frame and frame["type"] == "message.created":
                    last_position = frame["position"]
        except Exception:  # the socket died with the server
            pass
        server.start()
        resumed = await EventClient.connect(
            _ws(server), org["bob"], since=last_position, wait_caught_up=False
        )
        frames = await resumed.until(
            lambda fs: any(f["type"] == "caught_up" for f in fs), timeout=20
        )
        received = {
            f["message"]["id"] for f in bob.seen + frames if f.get("type") == "message.created"
        }
        assert set(acknowledged) <= received, sorted(set(acknowledged) - received)
        replayed = [f["message"]["id"] for f in frames if f.get("type") == "message.created"]
        assert len(replayed) == len(set(replayed))
        await resumed.close()
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("bus", ["redis", "nats"])
async def test_two_processes_share_events_through_the_bus(
    bus: str, databases: DatabaseFactory, workdir: Path
) -> None:
    port = 6379 if bus == "redis" else 4222
    if not _reachable(port):
        service_missing(f"{bus} on 127.0.0.1:{port}")
    url = await databases.create()
    env = {
        "COURTYARD_REALTIME__BUS": bus,
        "COURTYARD_REALTIME__BUS_CHANNEL": f"courtyard-e2e.{secrets.token_hex(6)}",
    }
    first = ServerProcess(url, workdir / f"{bus}-a-{secrets.token_hex(3)}", extra_env=env)
    second = ServerProcess(url, workdir / f"{bus}-b-{secrets.token_hex(3)}", extra_env=env)
    first.start()
    try:
        org = await _organisation(first)
        second.start()
        on_first = await EventClient.connect(_ws(first), org["bob"])
        on_second = await EventClient.connect(_ws(second), org["bob"])
        try:
            sent = await _send(second.url, org["alice"], org["channel"], "across nodes", "x1")
            for client in (on_first, on_second):
                event = await client.next_of("message.created", timeout=5)
                assert event["message"]["id"] == sent["id"]
            sent = await _send(first.url, org["alice"], org["channel"], "and back", "x2")
            for client in (on_first, on_second):
                event = await client.next_of("message.created", timeout=5)
                assert event["message"]["id"] == sent["id"]
            alice = await EventClient.connect(_ws(second), org["alice"])
            await on_first.send({"type": "presence.subscribe", "user_ids": [org["alice_id"]]})
            seen = await on_first.until(
                lambda fs: any(f.get("type") == "presence" and f["status"] == "online" for f in fs),
                timeout=10,
            )
            assert seen
            await alice.send({"type": "typing", "channel_id": org["channel"]})
            typing = await on_first.next_of("typing", timeout=5)
            assert typing["user_id"] == org["alice_id"]
            await alice.close()
        finally:
            await on_first.close()
            await on_second.close()
    finally:
        second.stop()
        first.stop()


@pytest.mark.slow
async def test_serve_with_two_workers_survives_losing_one(
    databases: DatabaseFactory, workdir: Path
) -> None:
    if not _reachable(6379):
        service_missing("redis on 127.0.0.1:6379")
    env = {
        "COURTYARD_SERVER__WORKERS": "2",
        "COURTYARD_REALTIME__BUS": "redis",
        "COURTYARD_REALTIME__BUS_CHANNEL": f"courtyard-e2e.{secrets.token_hex(6)}",
    }
    server = ServerProcess(
        await databases.create(), workdir / f"workers-{secrets.token_hex(3)}", extra_env=env
    )
    server.start()
    clients: list[EventClient] = []
    try:
        org = await _organisation(server)
        by_node: dict[str, EventClient] = {}
        deadline = asyncio.get_running_loop().time() + 30  # the second worker may still be starting
        while len(by_node) < 2 and asyncio.get_running_loop().time() < deadline:
            client = await EventClient.connect(_ws(server), org["bob"], wait_caught_up=False)
            hello = await client.next_of("hello")
            await client.next_of("caught_up")
            if hello["node"] in by_node:
                await client.close()
                await asyncio.sleep(0.05)
                continue
            by_node[hello["node"]] = client
            clients.append(client)
        assert len(by_node) == 2, "SO_REUSEPORT should spread sockets over both workers"
        sent = await _send(server.url, org["alice"], org["channel"], "to every worker", "w1")
        for client in clients:
            assert (await client.next_of("message.created"))["message"]["id"] == sent["id"]
        positions = {node: c.seen[-1]["position"] for node, c in by_node.items()}

        pids = [
            int(p) for p in re.findall(r"\d+", server.log().split("pids", 1)[1].split("\n", 1)[0])
        ]
        assert len(pids) == 2, server.log()
        os.kill(pids[0], signal.SIGKILL)
        missed = []
        for n in range(5):
            for _ in range(50):  # the surviving worker answers at once; retry across the kill
                try:
                    missed.append(
                        await _send(server.url, org["alice"], org["channel"], f"after {n}", f"a{n}")
                    )
                    break
                except (httpx.HTTPError, OSError):
                    await asyncio.sleep(0.1)
        assert len(missed) == 5
        for node, position in positions.items():
            resumed = await EventClient.connect(
                _ws(server), org["bob"], since=position, wait_caught_up=False
            )
            clients.append(resumed)
            frames = await resumed.until(
                lambda fs: any(f["type"] == "caught_up" for f in fs), timeout=20
            )
            got = [f["message"]["id"] for f in frames if f.get("type") == "message.created"]
            assert got == [m["id"] for m in missed], node
        await asyncio.sleep(2)
        assert "restarting" in server.log(), server.log()
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        server.stop()
