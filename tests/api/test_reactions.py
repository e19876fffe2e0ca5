"""Emoji reactions and pinned messages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from sqlalchemy import select

from courtyard.storage.schema import events
from tests.support import DatabaseFactory, Org, Person, org_context

THUMBS = "👍"
PARTY = "🎉"


def reaction_path(message_id: int, emoji: str) -> str:
    """The reaction endpoint, with the emoji URL-encoded as clients must send it."""
    return f"/api/v1/messages/{message_id}/reactions/{quote(emoji, safe='')}"


async def events_of(org: Org, channel_id: int, *types: str) -> list[dict[str, Any]]:
    """The outbox events of one channel with the given wire names, oldest first."""
    async with org.server.services.context.storage.snapshot() as uow:
        rows = await uow.conn.execute(
            select(events.c.payload)
            .where(events.c.channel_id == channel_id, events.c.type.in_(types))
            .order_by(events.c.position)
        )
        return [msgspec.json.decode(row.payload) for row in rows]


async def test_repeated_reaction_is_a_no_op_when_the_same_user_reacts_twice(
    org: Org, alice: Person
) -> None:
    channel = await alice.create_channel()
    message = await alice.send(channel["id"])
    first = await alice.put(reaction_path(message["id"], THUMBS))
    again = await alice.put(reaction_path(message["id"], THUMBS))
    assert first.status_code == again.status_code == 200
    expected = [{"emoji": THUMBS, "count": 1, "user_ids": [alice.id]}]
    assert first.json() == {"message_id": message["id"], "reactions": expected}
    assert again.json()["reactions"] == expected
    stored = (await alice.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["reactions"] == expected
    added = await events_of(org, channel["id"], "reaction.added")
    assert [(e["user_id"], e["emoji"]) for e in added] == [(alice.id, THUMBS)]


async def test_reactions_group_by_emoji_in_order_of_first_use_with_counts_and_user_ids(
    alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id, carol.id])
    message = await alice.send(channel["id"])
    await bob.put(reaction_path(message["id"], PARTY))
    await alice.put(reaction_path(message["id"], THUMBS))
    await carol.put(reaction_path(message["id"], PARTY))
    last = await carol.put(reaction_path(message["id"], THUMBS))
    expected = [
        {"emoji": PARTY, "count": 2, "user_ids": [bob.id, carol.id]},
        {"emoji": THUMBS, "count": 2, "user_ids": [alice.id, carol.id]},
    ]
    assert last.json()["reactions"] == expected
    history = (await bob.get(f"/api/v1/channels/{channel['id']}/messages")).json()
    assert history["messages"][0]["reactions"] == expected


async def test_removing_a_reaction_takes_back_only_your_own_when_others_share_the_emoji(
    org: Org, alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"])
    await alice.put(reaction_path(message["id"], THUMBS))
    await bob.put(reaction_path(message["id"], THUMBS))

    removed = await bob.delete(reaction_path(message["id"], THUMBS))
    assert removed.status_code == 200
    assert removed.json()["reactions"] == [{"emoji": THUMBS, "count": 1, "user_ids": [alice.id]}]
    twice = await bob.delete(reaction_path(message["id"], THUMBS))
    assert twice.status_code == 200
    assert twice.json()["reactions"] == removed.json()["reactions"]
    never = await bob.delete(reaction_path(message["id"], PARTY))
    assert never.status_code == 200

    last = await alice.delete(reaction_path(message["id"], THUMBS))
    assert last.json()["reactions"] == []
    gone = await events_of(org, channel["id"], "reaction.removed")
    assert [(e["user_id"], e["reactions"]) for e in gone] == [
        (bob.id, [{"emoji": THUMBS, "count": 1, "user_ids": [alice.id]}]),
        (alice.id, []),
    ]


@pytest.mark.parametrize(
    "emoji",
    [
        pytest.param("👍🏽", id="skin-tone"),
        pytest.param("👩🏿‍💻", id="skin-tone-zwj"),
        pytest.param("👨‍👩‍👧‍👦", id="zwj-family"),
        pytest.param("🏳️‍🌈", id="zwj-flag"),
        pytest.param("🇫🇷", id="regional-flag"),
        pytest.param("🏴󠁧󠁢󠁳󠁣󠁴󠁿", id="subdivision-flag"),
        pytest.param("#️⃣", id="keycap"),
        pytest.param("❤️", id="variation-selector"),
    ],
)
async def test_reaction_is_stored_exactly_when_the_emoji_is_a_multi_codepoint_sequence(
    alice: Person, emoji: str
) -> None:
    channel = await alice.create_channel()
    message = await alice.send(channel["id"])
    response = await alice.put(reaction_path(message["id"], emoji))
    assert response.status_code == 200, response.text
    assert response.json()["reactions"] == [{"emoji": emoji, "count": 1, "user_ids": [alice.id]}]
    removed = await alice.delete(reaction_path(message["id"], emoji))
    assert removed.json()["reactions"] == []


async def test_skin_tone_variants_are_distinct_reactions_when_both_are_used(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"])
    await alice.put(reaction_path(message["id"], "👍"))
    both = await bob.put(reaction_path(message["id"], "👍🏿"))
    assert [g["emoji"] for g in both.json()["reactions"]] == ["👍", "👍🏿"]


async def test_unqualified_emoji_is_the_same_reaction_when_it_lacks_the_variation_selector(
    alice: Person, bob: Person
) -> None:
    # U+2764 alone and U+2764 U+FE0F render as the same heart: two groups would show two
    # identical hearts, and one person could "react twice" with the same emoji.
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"])
    await alice.put(reaction_path(message["id"], "\u2764"))
    await alice.put(reaction_path(message["id"], "\u2764\ufe0f"))
    both = await bob.put(reaction_path(message["id"], "\u2764"))
    assert both.json()["reactions"] == [
        {"emoji": "\u2764\ufe0f", "count": 2, "user_ids": [alice.id, bob.id]}
    ]
    removed = await alice.delete(reaction_path(message["id"], "\u2764"))
    assert removed.json()["reactions"] == [
        {"emoji": "\u2764\ufe0f", "count": 1, "user_ids": [bob.id]}
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x", id="letter"),
        pytest.param(":+1:", id="shortcode"),
        pytest.param("👍👍", id="two-emoji"),
        pytest.param("👍x", id="emoji-and-letter"),
        pytest.param(" ", id="blank"),
        pytest.param("1", id="digit"),
        pytest.param("🇦", id="half-a-flag"),
        pytest.param("🏽", id="bare-skin-tone"),
        pytest.param("\u200b👍", id="zero-width-space"),
    ],
)
async def test_reaction_is_refused_when_it_is_not_one_emoji(alice: Person, text: str) -> None:
    channel = await alice.create_channel()
    message = await alice.send(channel["id"])
    response = await alice.put(reaction_path(message["id"], text))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_emoji"
    removal = await alice.delete(reaction_path(message["id"], text))
    assert removal.status_code == 422
    stored = (await alice.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["reactions"] == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_reaction_is_refused_when_the_emoji_is_empty(alice: Person, method: str) -> None:
    channel = await alice.create_channel()
    message = await alice.send(channel["id"])
    response = await alice.client.request(method, f"/api/v1/messages/{message['id']}/reactions/")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_emoji"


async def test_reacting_is_refused_when_the_message_has_the_most_distinct_emoji(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with org_context(databases, workdir, messaging={"max_reaction_kinds": 2}) as small:
        alice, bob = await small.person("alice"), await small.person("bob")
        channel = await alice.create_channel(member_ids=[bob.id])
        message = await alice.send(channel["id"])
        await alice.put(reaction_path(message["id"], THUMBS))
        await alice.put(reaction_path(message["id"], PARTY))

        third = await bob.put(reaction_path(message["id"], "🚀"))
        assert third.status_code == 409
        assert third.json()["code"] == "too_many_reactions"
        # An emoji already on the message is not a new kind: anyone may still add it.
        joined = await bob.put(reaction_path(message["id"], THUMBS))
        assert joined.status_code == 200
        assert [g["count"] for g in joined.json()["reactions"]] == [2, 1]
        # Freeing a kind makes room again.
        await alice.delete(reaction_path(message["id"], PARTY))
        room = await bob.put(reaction_path(message["id"], "🚀"))
        assert room.status_code == 200
        assert [g["emoji"] for g in room.json()["reactions"]] == [THUMBS, "🚀"]


async def test_concurrent_reactions_never_exceed_the_distinct_emoji_limit(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with org_context(databases, workdir, messaging={"max_reaction_kinds": 2}) as small:
        people = [await small.person("p") for _ in range(6)]
        channel = await people[0].create_channel(member_ids=[p.id for p in people[1:]])
        message = await people[0].send(channel["id"])
        kinds = ["🍎", "🍐", "🍊", "🍋", "🍌", "🍉"]
        responses = await asyncio.gather(
            *(p.put(reaction_path(message["id"], k)) for p, k in zip(people, kinds, strict=True))
        )
        assert sorted(r.status_code for r in responses) == [200, 200, 409, 409, 409, 409]
        stored = (await people[0].get(f"/api/v1/messages/{message['id']}")).json()
        assert len(stored["reactions"]) == 2


async def test_concurrent_identical_reactions_store_one_when_a_client_retries(
    alice: Person,
) -> None:
    channel = await alice.create_channel()
    message = await alice.send(channel["id"])
    responses = await asyncio.gather(
        *(alice.put(reaction_path(message["id"], THUMBS)) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    stored = (await alice.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["reactions"] == [{"emoji": THUMBS, "count": 1, "user_ids": [alice.id]}]


async def test_reactions_are_not_found_when_the_message_was_deleted(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"])
    await bob.put(reaction_path(message["id"], THUMBS))
    await alice.delete(f"/api/v1/messages/{message['id']}")

    for response in (
        await bob.put(reaction_path(message["id"], PARTY)),
        await bob.delete(reaction_path(message["id"], THUMBS)),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    stored = (await bob.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["reactions"] == []


async def test_reacting_is_refused_when_the_actor_cannot_post_in_the_channel(
    alice: Person, bob: Person
) -> None:
    public = await alice.create_channel()
    private = await alice.create_channel(private=True)
    in_public = await alice.send(public["id"])
    in_private = await alice.send(private["id"])

    outsider = await bob.put(reaction_path(in_public["id"], THUMBS))
    assert outsider.status_code == 403
    assert outsider.json()["code"] == "not_a_member"
    hidden = await bob.put(reaction_path(in_private["id"], THUMBS))
    assert hidden.status_code == 404
    missing = await bob.put(reaction_path(2**40, THUMBS))
    assert missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]


# --- pins ---------------------------------------------------------------------------------


async def test_pins_are_listed_newest_pin_first_when_pinned_out_of_order(
    org: Org, alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    first, second, third = [await alice.send(channel["id"], f"m{n}") for n in (1, 2, 3)]
    for message in (second, first, third):
        pinned = await bob.put(f"/api/v1/messages/{message['id']}/pin")
        assert pinned.status_code == 200
        assert pinned.json()["pinned_by"] == bob.id
        assert pinned.json()["pinned_at"] is not None

    pins = await alice.get(f"/api/v1/channels/{channel['id']}/pins")
    assert pins.status_code == 200
    assert [m["text"] for m in pins.json()["messages"]] == ["m3", "m1", "m2"]

    # Pinning again changes nothing (not even the order).
    again = await alice.put(f"/api/v1/messages/{first['id']}/pin")
    assert again.status_code == 200 and again.json()["pinned_by"] == bob.id
    pins = await alice.get(f"/api/v1/channels/{channel['id']}/pins")
    assert [m["text"] for m in pins.json()["messages"]] == ["m3", "m1", "m2"]

    unpinned = await alice.delete(f"/api/v1/messages/{third['id']}/pin")
    assert unpinned.status_code == 200
    assert unpinned.json()["pinned_at"] is None and unpinned.json()["pinned_by"] is None
    assert (await alice.delete(f"/api/v1/messages/{third['id']}/pin")).status_code == 200
    pins = await alice.get(f"/api/v1/channels/{channel['id']}/pins")
    assert [m["text"] for m in pins.json()["messages"]] == ["m1", "m2"]

    changes = await events_of(org, channel["id"], "message.pinned", "message.unpinned")
    assert [(e["type"], e["message"]["text"]) for e in changes] == [
        ("message.pinned", "m2"),
        ("message.pinned", "m1"),
        ("message.pinned", "m3"),
        ("message.unpinned", "m3"),
    ]


async def test_pinning_is_refused_when_the_message_is_a_thread_reply(alice: Person) -> None:
    channel = await alice.create_channel()
    root = await alice.send(channel["id"], "root")
    reply = await alice.send(channel["id"], "reply", thread_root_id=root["id"])
    refused = await alice.put(f"/api/v1/messages/{reply['id']}/pin")
    assert refused.status_code == 422
    assert refused.json()["code"] == "reply_not_pinnable"
    assert (await alice.put(f"/api/v1/messages/{root['id']}/pin")).status_code == 200
    pins = (await alice.get(f"/api/v1/channels/{channel['id']}/pins")).json()["messages"]
    assert [m["id"] for m in pins] == [root["id"]]


async def test_deleting_a_pinned_message_unpins_it(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    kept = await alice.send(channel["id"], "kept")
    doomed = await alice.send(channel["id"], "doomed")
    await bob.put(f"/api/v1/messages/{kept['id']}/pin")
    await bob.put(f"/api/v1/messages/{doomed['id']}/pin")

    await alice.delete(f"/api/v1/messages/{doomed['id']}")
    pins = (await bob.get(f"/api/v1/channels/{channel['id']}/pins")).json()["messages"]
    assert [m["id"] for m in pins] == [kept["id"]]
    stored = (await bob.get(f"/api/v1/messages/{doomed['id']}")).json()
    assert stored["pinned_at"] is None and stored["pinned_by"] is None
    assert (await bob.put(f"/api/v1/messages/{doomed['id']}/pin")).status_code == 404
    assert (await bob.delete(f"/api/v1/messages/{doomed['id']}/pin")).status_code == 404


async def test_pins_are_not_found_when_the_channel_is_private_to_others(
    alice: Person, bob: Person
) -> None:
    private = await alice.create_channel(private=True)
    message = await alice.send(private["id"])
    await alice.put(f"/api/v1/messages/{message['id']}/pin")
    assert (await bob.get(f"/api/v1/channels/{private['id']}/pins")).status_code == 404
    assert (await bob.put(f"/api/v1/messages/{message['id']}/pin")).status_code == 404
    public = await alice.create_channel()
    in_public = await alice.send(public["id"])
    outsider = await bob.put(f"/api/v1/messages/{in_public['id']}/pin")
    assert outsider.status_code == 403
    readable = await bob.get(f"/api/v1/channels/{public['id']}/pins")
    assert readable.status_code == 200 and readable.json()["messages"] == []


async def test_reactions_and_pins_are_refused_when_the_channel_is_archived(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"])
    await bob.put(reaction_path(message["id"], THUMBS))
    assert (await alice.post(f"/api/v1/channels/{channel['id']}/archive")).status_code == 200

    for response in (
        await bob.put(reaction_path(message["id"], PARTY)),
        await bob.delete(reaction_path(message["id"], THUMBS)),
        await bob.put(f"/api/v1/messages/{message['id']}/pin"),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "channel_archived"
    stored = (await bob.get(f"/api/v1/messages/{message['id']}")).json()
    assert stored["reactions"] == [{"emoji": THUMBS, "count": 1, "user_ids": [bob.id]}]
    assert stored["pinned_at"] is None
