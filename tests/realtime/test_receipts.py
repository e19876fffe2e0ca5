"""Read receipts: who read a message, live and over REST, with the opt-out."""

from __future__ import annotations

from pathlib import Path

from tests.realtime.client import EventClient
from tests.support import DatabaseFactory, Org, Person, org_context


async def test_reading_is_announced_to_the_channel_and_listed(
    org: Org, alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id, carol.id])
    message = await alice.send(channel["id"], "did you see this?")
    watcher = await EventClient.connect(org.server.ws_url, alice.token)
    try:
        assert (await bob.post(f"/api/v1/channels/{channel['id']}/read", {})).status_code == 200
        receipt = await watcher.next_of("read_marker.moved")
        assert (receipt["user_id"], receipt["last_read_seq"]) == (bob.id, message["seq"])
        listed = (await alice.get(f"/api/v1/messages/{message['id']}/receipts")).json()
        assert listed == {"message_id": message["id"], "available": True, "read_by": [bob.id]}
        # Marking unread is nobody else's business.
        await bob.post(f"/api/v1/channels/{channel['id']}/read", {"seq": 0})
        assert await watcher.quiet(0.3) == []
    finally:
        await watcher.close()


async def test_opting_out_hides_your_reads(org: Org, alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"], "hello")
    assert (await bob.patch("/api/v1/me", {"send_read_receipts": False})).json()[
        "send_read_receipts"
    ] is False
    watcher = await EventClient.connect(org.server.ws_url, alice.token)
    bob_device = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        await bob.post(f"/api/v1/channels/{channel['id']}/read", {})
        own = await bob_device.next_of("read_marker.moved")
        assert own["user_id"] == bob.id, "your own devices still sync"
        assert await watcher.quiet(0.3) == []
        listed = (await alice.get(f"/api/v1/messages/{message['id']}/receipts")).json()
        assert listed["read_by"] == []
        others = await alice.patch(f"/api/v1/users/{bob.id}", {"send_read_receipts": True})
        assert others.status_code == 403
    finally:
        await watcher.close()
        await bob_device.close()


async def test_no_receipts_in_big_channels_or_when_policy_is_off(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with org_context(databases, workdir, messaging={"read_receipts_max_members": 2}) as own:
        alice = await own.person("alice")
        bob = await own.person("bob")
        carol = await own.person("carol")
        small = await alice.create_channel(member_ids=[bob.id])
        big = await alice.create_channel(member_ids=[bob.id, carol.id])
        for channel in (small, big):
            message = await alice.send(channel["id"], "x")
            await bob.post(f"/api/v1/channels/{channel['id']}/read", {})
            listed = (await alice.get(f"/api/v1/messages/{message['id']}/receipts")).json()
            assert listed["available"] is (channel is small)
    async with org_context(databases, workdir, messaging={"read_receipts": "always"}) as strict:
        person = await strict.person("dana")
        refused = await person.patch("/api/v1/me", {"send_read_receipts": False})
        assert refused.status_code == 422
        assert refused.json()["code"] == "policy_requires_receipts"
