"""Event socket basics against the in-process live server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.support import Org, Person


async def _recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def test_member_receives_message_created_live(org: Org, alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    headers = {"Authorization": f"Bearer {bob.token}"}
    async with websockets.connect(org.server.ws_url, additional_headers=headers) as ws:
        hello = await _recv(ws)
        assert hello["type"] == "hello"
        caught_up = await _recv(ws)
        assert caught_up["type"] == "caught_up"
        sent = await alice.send(channel["id"], "live!")
        event = await _recv(ws)
        assert event["type"] == "message.created"
        assert event["message"]["id"] == sent["id"]
        assert event["position"] > hello["position"]
