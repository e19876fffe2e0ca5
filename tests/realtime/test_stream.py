"""The event stream end to end: ordering, resume, convergence and privacy."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.realtime.client import EventClient
from tests.support import Org, Person


def _messages(frames: list[dict[str, Any]], kind: str = "message.created") -> list[dict[str, Any]]:
    return [f["message"] for f in frames if f.get("type") == kind]


async def test_events_within_a_channel_arrive_in_sequence_order(
    org: Org, alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    client = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        await asyncio.gather(*(alice.send(channel["id"], f"m{n}") for n in range(40)))
        frames = await client.until(lambda fs: len(_messages(fs)) == 40)
        seqs = [m["seq"] for m in _messages(frames)]
        assert seqs == list(range(1, 41))
        positions = [f["position"] for f in frames if "position" in f]
        assert positions == sorted(positions)
        assert len(positions) == len(set(positions))
    finally:
        await client.close()


async def test_resume_delivers_exactly_what_was_missed_with_no_gap_at_the_seam(
    org: Org, alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    first = await EventClient.connect(org.server.ws_url, bob.token)
    await alice.send(channel["id"], "before")
    seen = await first.next_of("message.created")
    last_position = seen["position"]
    await first.close()

    for n in range(10):
        await alice.send(channel["id"], f"missed {n}")

    async def keep_sending() -> None:
        for n in range(15):
            await alice.send(channel["id"], f"seam {n}")
            await asyncio.sleep(0.005)

    sender = asyncio.create_task(keep_sending())
    second = await EventClient.connect(
        org.server.ws_url, bob.token, since=last_position, wait_caught_up=False
    )
    try:
        await sender
        frames = await second.until(lambda fs: len(_messages(fs)) >= 25, timeout=15)
        texts = [m["text"] for m in _messages(frames)]
        assert texts == [f"missed {n}" for n in range(10)] + [f"seam {n}" for n in range(15)]
        assert frames[0]["type"] == "hello"
        assert any(f["type"] == "caught_up" for f in frames)
        control = ("hello", "caught_up", "resync_required")
        positions = [f["position"] for f in frames if f["type"] not in control]
        assert len(positions) == len(set(positions))
        assert await second.quiet(0.3) == []
    finally:
        await second.close()


async def test_resume_applies_the_membership_changes_made_while_offline(
    org: Org, alice: Person, bob: Person
) -> None:
    """The replay starts from bob's channels as they were at his position: a channel he left
    while away replays up to his removal, one he joined replays from his joining."""
    kept = await alice.create_channel(private=True, member_ids=[bob.id])
    left = await alice.create_channel(private=True, member_ids=[bob.id])
    joined = await alice.create_channel(private=True)
    first = await EventClient.connect(org.server.ws_url, bob.token)
    await alice.send(kept["id"], "before")
    position = (await first.next_of("message.created"))["position"]
    await first.close()

    await alice.send(left["id"], "while a member")
    removed = await alice.delete(f"/api/v1/channels/{left['id']}/members/{bob.id}")
    assert removed.status_code == 204
    await alice.send(left["id"], "after the removal")
    await alice.send(joined["id"], "before the joining")
    added = await alice.post(f"/api/v1/channels/{joined['id']}/members", {"user_ids": [bob.id]})
    assert added.status_code in (200, 201, 204), added.text
    await alice.send(joined["id"], "after the joining")
    await alice.send(kept["id"], "kept")

    second = await EventClient.connect(
        org.server.ws_url, bob.token, since=position, wait_caught_up=False
    )
    try:
        frames = await second.until(lambda fs: any(f["type"] == "caught_up" for f in fs))
        texts = [m["text"] for m in _messages(frames)]
        assert texts == ["while a member", "after the joining", "kept"]
    finally:
        await second.close()


async def test_resume_from_a_position_outside_the_log_asks_for_resync(
    org: Org, bob: Person
) -> None:
    client = await EventClient.connect(
        org.server.ws_url, bob.token, since=10**15, wait_caught_up=False
    )
    try:
        frames = await client.until(lambda fs: any(f["type"] == "caught_up" for f in fs))
        assert [f["type"] for f in frames][:2] == ["hello", "resync_required"]
    finally:
        await client.close()


async def test_non_members_receive_nothing_and_removed_members_stop_at_removal(
    org: Org, alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(private=True, member_ids=[bob.id])
    outsider = await EventClient.connect(org.server.ws_url, carol.token)
    member = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        await alice.send(channel["id"], "secret 1")
        assert (await member.next_of("message.created"))["message"]["text"] == "secret 1"
        removed = await alice.delete(f"/api/v1/channels/{channel['id']}/members/{bob.id}")
        assert removed.status_code == 204
        left = await member.next_of("member.left")
        assert left["user_id"] == bob.id
        await alice.send(channel["id"], "secret 2")
        await alice.patch(f"/api/v1/channels/{channel['id']}", {"topic": "after removal"})
        assert await member.quiet(0.5) == []
        assert await outsider.quiet(0.2) == []
    finally:
        await member.close()
        await outsider.close()


async def test_joining_after_connecting_starts_delivery_at_once(
    org: Org, alice: Person, bob: Person
) -> None:
    client = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        channel = await alice.create_channel(private=True, member_ids=[bob.id])
        created = await client.next_of("channel.created")
        assert created["channel"]["id"] == channel["id"]
        await alice.send(channel["id"], "welcome")
        assert (await client.next_of("message.created"))["message"]["text"] == "welcome"
        conversation = await alice.post("/api/v1/conversations", {"user_ids": [bob.id]})
        dm = conversation.json()
        await alice.send(dm["id"], "psst")
        assert (await client.next_of("message.created"))["message"]["channel_id"] == dm["id"]
    finally:
        await client.close()


class _Model:
    """A client-side model built from initial state plus events."""

    def __init__(self, messages: list[dict[str, Any]], channel: dict[str, Any]) -> None:
        self.messages = {m["id"]: m for m in messages}
        self.channel = channel

    def apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in (
            "message.created",
            "message.edited",
            "message.deleted",
            "message.pinned",
            "message.unpinned",
        ):
            self.messages[frame["message"]["id"]] = frame["message"]
        elif kind == "thread.updated":
            self.messages[frame["root"]["id"]] = frame["root"]
        elif kind in ("reaction.added", "reaction.removed"):
            message = self.messages[frame["message_id"]]
            self.messages[frame["message_id"]] = {**message, "reactions": frame["reactions"]}
        elif kind in ("channel.updated", "channel.archived", "channel.unarchived"):
            self.channel = frame["channel"]


async def test_initial_state_plus_events_equals_a_fresh_fetch(
    org: Org, alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    cid = channel["id"]
    early = await alice.send(cid, "early")
    state = (await bob.get("/api/v1/state")).json()
    history = (await bob.get(f"/api/v1/channels/{cid}/messages", params={"limit": 200})).json()[
        "messages"
    ]
    model = _Model(history, (await bob.get(f"/api/v1/channels/{cid}")).json()["channel"])
    client = await EventClient.connect(org.server.ws_url, bob.token, since=state["position"])
    try:
        second = await bob.send(cid, "second")
        reply = await alice.send(cid, "in thread", thread_root_id=early["id"])
        await alice.patch(f"/api/v1/messages/{early['id']}", {"text": "early (edited)"})
        await bob.put(f"/api/v1/messages/{early['id']}/reactions/%F0%9F%8E%89")
        await alice.put(f"/api/v1/messages/{second['id']}/pin")
        doomed = await alice.send(cid, "doomed")
        await alice.delete(f"/api/v1/messages/{doomed['id']}")
        await alice.patch(f"/api/v1/channels/{cid}", {"topic": "converged"})
        frames = await client.until(lambda fs: any(f["type"] == "channel.updated" for f in fs))
        for frame in frames:
            model.apply(frame)
        fresh = (await bob.get(f"/api/v1/channels/{cid}/messages", params={"limit": 200})).json()[
            "messages"
        ]
        top_level = {k: v for k, v in model.messages.items() if v["thread_root_id"] is None}
        assert top_level == {m["id"]: m for m in fresh}
        assert model.channel == (await bob.get(f"/api/v1/channels/{cid}")).json()["channel"]
        assert model.messages[reply["id"]]["text"] == "in thread"
    finally:
        await client.close()
