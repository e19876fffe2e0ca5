"""Read state: read markers, unread and mention counts, and the cost of the channel list."""

from __future__ import annotations

from typing import Any

from tests.support import Org, Person, QueryCounter

CHANNELS = "/api/v1/channels"


async def summary(person: Person, channel_id: int) -> dict[str, Any]:
    """The person's row for one channel in GET /api/v1/channels (asserting it is there)."""
    response = await person.get(CHANNELS)
    assert response.status_code == 200, response.text
    rows = [r for r in response.json()["channels"] if r["channel"]["id"] == channel_id]
    assert len(rows) == 1, f"channel {channel_id} listed {len(rows)} times"
    return dict(rows[0])


async def counts(person: Person, channel_id: int) -> tuple[int, int]:
    """(unread_count, mention_count), checked to agree between the list and the channel."""
    row = await summary(person, channel_id)
    single = (await person.get(f"{CHANNELS}/{channel_id}")).json()
    assert (single["unread_count"], single["mention_count"]) == (
        row["unread_count"],
        row["mention_count"],
    ), "GET /channels/{id} and the channel list disagree"
    return row["unread_count"], row["mention_count"]


async def mark(person: Person, channel_id: int, **body: Any) -> int:
    """Move the read marker; return where it landed."""
    response = await person.post(f"{CHANNELS}/{channel_id}/read", body)
    assert response.status_code == 200, response.text
    assert response.json()["channel_id"] == channel_id
    return int(response.json()["last_read_seq"])


# --- unread counts -----------------------------------------------------------------------------


async def test_unread_count_counts_top_level_messages_by_others_after_the_marker(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    first = await alice.send(channel["id"], "one")
    doomed = await alice.send(channel["id"], "two")
    await alice.send(channel["id"], "three")
    await alice.send(channel["id"], "reply", thread_root_id=first["id"])
    assert await counts(bob, channel["id"]) == (3, 0)
    assert (await alice.delete(f"/api/v1/messages/{doomed['id']}")).status_code == 200
    assert await counts(bob, channel["id"]) == (2, 0), "deleted messages are not unread"
    await bob.send(channel["id"], "bob replies in the thread", thread_root_id=first["id"])
    assert await counts(bob, channel["id"]) == (2, 0), "a thread reply does not mark read"
    assert await counts(alice, channel["id"]) == (0, 0), "own messages and replies never count"


async def test_unread_count_is_zero_when_nothing_new(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    assert await counts(bob, channel["id"]) == (0, 0)
    await alice.send(channel["id"], "news")
    await mark(bob, channel["id"])
    assert await counts(bob, channel["id"]) == (0, 0)
    await alice.send(channel["id"], "more news")
    assert await counts(bob, channel["id"]) == (1, 0)


async def test_sending_top_level_message_moves_senders_marker(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    root = await alice.send(channel["id"], "a")
    await alice.send(channel["id"], "b")
    assert await counts(bob, channel["id"]) == (2, 0)
    await bob.send(channel["id"], "reply", thread_root_id=root["id"])
    row = await summary(bob, channel["id"])
    assert row["membership"]["last_read_seq"] == 0, "thread replies leave the marker alone"
    assert row["unread_count"] == 2
    mine = await bob.send(channel["id"], "caught up")
    row = await summary(bob, channel["id"])
    assert row["membership"]["last_read_seq"] == mine["seq"]
    assert row["unread_count"] == 0
    assert (await summary(alice, channel["id"]))["unread_count"] == 1


async def test_unread_counts_are_per_channel_and_per_person(
    alice: Person, bob: Person, carol: Person
) -> None:
    one = await alice.create_channel(member_ids=[bob.id, carol.id])
    two = await alice.create_channel(member_ids=[bob.id])
    for n in range(3):
        await alice.send(one["id"], f"one-{n}")
    await alice.send(two["id"], "two")
    await mark(carol, one["id"], seq=1)
    assert await counts(bob, one["id"]) == (3, 0)
    assert await counts(bob, two["id"]) == (1, 0)
    assert await counts(carol, one["id"]) == (2, 0)


# --- mention counts ----------------------------------------------------------------------------


async def test_mention_count_counts_username_channel_and_here(
    alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id, carol.id])
    await alice.send(channel["id"], f"@{bob.username} can you look?")
    await alice.send(channel["id"], "@channel standup in 5")
    await alice.send(channel["id"], "@here anyone around?")
    await alice.send(channel["id"], f"code `@{bob.username}` is not a mention")
    await alice.send(channel["id"], f"@{bob.username.upper()} @channel counted once")
    await alice.send(channel["id"], "plain")
    assert await counts(bob, channel["id"]) == (6, 4)
    assert await counts(carol, channel["id"]) == (6, 3)
    assert await counts(alice, channel["id"]) == (0, 0), "your own @channel does not count"


async def test_mention_count_ignores_people_who_are_not_members(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel()
    await alice.send(channel["id"], f"@{bob.username} you are not here yet")
    assert (await bob.post(f"{CHANNELS}/{channel['id']}/join")).status_code == 200
    assert await counts(bob, channel["id"]) == (0, 0), "newcomers start caught up"
    marked = await bob.post(f"{CHANNELS}/{channel['id']}/read", {"seq": 0})
    assert marked.status_code == 200
    assert await counts(bob, channel["id"]) == (1, 0), "unread again, but never a mention"


async def test_mention_count_follows_the_marker_when_marking_read_and_unread(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    await alice.send(channel["id"], "hello")
    pinged = await alice.send(channel["id"], f"@{bob.username} ping")
    await alice.send(channel["id"], "@here bye")
    assert await counts(bob, channel["id"]) == (3, 2)
    assert await mark(bob, channel["id"]) == 3
    assert await counts(bob, channel["id"]) == (0, 0)
    assert await mark(bob, channel["id"], seq=pinged["seq"] - 1) == 1
    assert await counts(bob, channel["id"]) == (2, 2), "marking unread brings mentions back"
    assert await mark(bob, channel["id"], seq=pinged["seq"]) == 2
    assert await counts(bob, channel["id"]) == (1, 1)


async def test_mention_count_drops_when_mentioning_message_is_deleted(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    named = await alice.send(channel["id"], f"@{bob.username} secret")
    wide = await alice.send(channel["id"], "@channel oops")
    here = await alice.send(channel["id"], "@here oops")
    assert await counts(bob, channel["id"]) == (3, 3)
    for message in (named, wide, here):
        assert (await alice.delete(f"/api/v1/messages/{message['id']}")).status_code == 200
    assert await counts(bob, channel["id"]) == (0, 0)


async def test_mention_count_follows_edits(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    named = await alice.send(channel["id"], f"@{bob.username} look")
    wide = await alice.send(channel["id"], "@channel look")
    assert await counts(bob, channel["id"]) == (2, 2)
    await alice.patch(f"/api/v1/messages/{named['id']}", {"text": "never mind"})
    await alice.patch(f"/api/v1/messages/{wide['id']}", {"text": "never mind either"})
    assert await counts(bob, channel["id"]) == (2, 0)
    plain = await alice.send(channel["id"], "plain")
    await alice.patch(f"/api/v1/messages/{plain['id']}", {"text": f"now @{bob.username}"})
    assert await counts(bob, channel["id"]) == (3, 1)


async def test_mention_count_ignores_own_mentions_when_replying_in_a_thread(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    root = await alice.send(channel["id"], "root")
    await mark(bob, channel["id"])
    await bob.send(channel["id"], f"note to @{bob.username}", thread_root_id=root["id"])
    await bob.send(channel["id"], "@channel fyi", thread_root_id=root["id"])
    assert await counts(bob, channel["id"]) == (0, 0), "nobody is notified by themselves"
    assert await counts(alice, channel["id"]) == (0, 1)


# --- read markers ------------------------------------------------------------------------------


async def test_mark_read_defaults_to_newest_message(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    root = await alice.send(channel["id"], "a")
    await alice.send(channel["id"], "b")
    reply = await alice.send(channel["id"], "c", thread_root_id=root["id"])
    assert await mark(bob, channel["id"]) == reply["seq"] == 3
    row = await summary(bob, channel["id"])
    assert row["membership"]["last_read_seq"] == 3
    assert row["unread_count"] == 0
    assert await mark(bob, channel["id"], seq=None) == 3


async def test_mark_read_moves_backwards_when_seq_is_earlier(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    for n in range(5):
        await alice.send(channel["id"], f"m{n}")
    assert await mark(bob, channel["id"]) == 5
    assert await mark(bob, channel["id"], seq=2) == 2
    assert await counts(bob, channel["id"]) == (3, 0)
    assert await mark(bob, channel["id"], seq=0) == 0
    assert await counts(bob, channel["id"]) == (5, 0)
    members = (await bob.get(f"{CHANNELS}/{channel['id']}/members")).json()["members"]
    assert {m["user_id"]: m["last_read_seq"] for m in members}[bob.id] == 0


async def test_mark_read_clamps_seq_to_newest_message(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    await alice.send(channel["id"], "only")
    assert await mark(bob, channel["id"], seq=1_000_000) == 1
    assert (await summary(bob, channel["id"]))["membership"]["last_read_seq"] == 1
    await alice.send(channel["id"], "next")
    assert await counts(bob, channel["id"]) == (1, 0), "a marker in the future would hide this"
    empty = await alice.create_channel(member_ids=[bob.id])
    assert await mark(bob, empty["id"], seq=7) == 0


async def test_mark_read_refuses_bad_seq(alice: Person) -> None:
    channel = await alice.create_channel()
    for body in ({"seq": -1}, {"seq": "3"}, {"seq": 1.5}, {"sequence": 1}, {"seq": 2**63}):
        response = await alice.post(f"{CHANNELS}/{channel['id']}/read", body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_failed"


async def test_mark_read_refused_when_not_a_member(
    alice: Person, bob: Person, guest: Person
) -> None:
    public = await alice.create_channel()
    await alice.send(public["id"], "hi")
    refused = await bob.post(f"{CHANNELS}/{public['id']}/read", {})
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_a_member"
    private = await alice.create_channel(private=True)
    for person, channel in ((bob, private), (guest, public), (guest, private)):
        hidden = await person.post(f"{CHANNELS}/{channel['id']}/read", {})
        assert hidden.status_code == 404
        assert hidden.json()["code"] == "not_found"


async def test_mark_read_works_when_channel_is_archived(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    await alice.send(channel["id"], "final")
    assert (await alice.post(f"{CHANNELS}/{channel['id']}/archive")).status_code == 200
    assert await counts(bob, channel["id"]) == (1, 0)
    assert await mark(bob, channel["id"]) == 1
    assert await counts(bob, channel["id"]) == (0, 0)


async def test_read_markers_are_personal(alice: Person, bob: Person, carol: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id, carol.id])
    await alice.send(channel["id"], "one")
    await alice.send(channel["id"], "two")
    await mark(bob, channel["id"])
    assert await counts(bob, channel["id"]) == (0, 0)
    assert await counts(carol, channel["id"]) == (2, 0)


# --- cost of the channel list ------------------------------------------------------------------


async def _populate(
    owner: Person, other: Person, channels: int, conversations: list[Person]
) -> None:
    """Give ``owner`` channels with unread messages and mentions, and some conversations."""
    for _ in range(channels):
        channel = await owner.create_channel(member_ids=[other.id])
        await other.send(channel["id"], f"hey @{owner.username}")
        await other.send(channel["id"], "@here")
    for person in conversations:
        response = await owner.post("/api/v1/conversations", {"user_ids": [person.id]})
        assert response.status_code == 200
        await person.send(response.json()["id"], "dm")


async def _count_list(person: Person, queries: QueryCounter) -> tuple[int, list[dict[str, Any]]]:
    # Warm up first, so a periodic session touch cannot land inside the measured request.
    assert (await person.get(CHANNELS)).status_code == 200
    with queries.counting() as counted:
        response = await person.get(CHANNELS)
    assert response.status_code == 200
    # The channel list reads no users; a users read here can only be authentication refreshing
    # its cache, which is time-dependent and not what this test measures.
    listing = [s for s in counted.statements if "FROM users" not in s]
    _last_listing[:] = listing
    return len(listing), response.json()["channels"]


_last_listing: list[str] = []  # the statements of the latest measured listing, for messages


async def test_channel_list_costs_the_same_queries_for_2_or_20_channels(
    org: Org, alice: Person, bob: Person, queries: QueryCounter
) -> None:
    partners = [await org.person("dm") for _ in range(4)]
    await _populate(alice, bob, 2, partners[:1])
    few, rows = await _count_list(alice, queries)
    assert len(rows) == 3
    assert {(r["unread_count"], r["mention_count"]) for r in rows} == {(2, 2), (1, 0)}

    await _populate(alice, bob, 18, partners[1:])
    many, rows = await _count_list(alice, queries)
    assert len(rows) == 24
    assert sum(r["unread_count"] for r in rows) == 20 * 2 + 4
    assert sum(r["mention_count"] for r in rows) == 20 * 2
    conversations = [r for r in rows if r["channel"]["kind"] == "direct"]
    assert all(r["channel"]["member_ids"] for r in conversations)
    assert few == many, [s[:60] for s in _last_listing]
    assert many <= 7, queries.statements
