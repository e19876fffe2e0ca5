"""Direct and group conversations: one conversation per set of people, fixed membership."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support import DatabaseFactory, Org, Person, org_context

CONVERSATIONS = "/api/v1/conversations"
CHANNELS = "/api/v1/channels"
MISSING_ID = 2**62


async def open_with(person: Person, *others: Person | int) -> dict[str, Any]:
    """Open the conversation between ``person`` and ``others`` (asserting success)."""
    ids = [o if isinstance(o, int) else o.id for o in others]
    response = await person.post(CONVERSATIONS, {"user_ids": ids})
    assert response.status_code == 200, response.text
    return dict(response.json())


def problem_of(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    """Status and problem body without ``instance`` (which only echoes the request path)."""
    body = dict(response.json())
    body.pop("instance", None)
    return response.status_code, body


async def conversations_of(person: Person) -> list[dict[str, Any]]:
    """The direct and group conversations in the person's channel list."""
    rows = (await person.get(CHANNELS)).json()["channels"]
    return [r for r in rows if r["channel"]["kind"] in ("direct", "group")]


async def test_same_pair_gets_same_direct_conversation_from_either_side(
    alice: Person, bob: Person
) -> None:
    first = await open_with(alice, bob)
    assert first["kind"] == "direct"
    assert first["name"] == ""
    assert first["member_ids"] == sorted([alice.id, bob.id])
    assert first["member_count"] == 2
    assert (await open_with(bob, alice))["id"] == first["id"]
    assert (await open_with(alice, bob, bob, alice))["id"] == first["id"]
    listed = await conversations_of(bob)
    assert [r["channel"]["id"] for r in listed] == [first["id"]]
    assert listed[0]["channel"]["member_ids"] == sorted([alice.id, bob.id])


async def test_same_group_gets_same_conversation_in_any_order(
    alice: Person, bob: Person, carol: Person
) -> None:
    group = await open_with(alice, bob, carol)
    assert group["kind"] == "group"
    assert group["member_ids"] == sorted([alice.id, bob.id, carol.id])
    assert (await open_with(carol, bob, alice))["id"] == group["id"]
    assert (await open_with(bob, alice, carol, bob))["id"] == group["id"]
    pair = await open_with(alice, bob)
    assert pair["id"] != group["id"], "a subset of the people is a different conversation"
    for person in (alice, bob, carol):
        got = (await person.get(f"{CHANNELS}/{group['id']}")).json()["channel"]
        assert got["member_ids"] == group["member_ids"]


async def test_self_conversation_is_a_direct_message_with_one_member(alice: Person) -> None:
    notes = await open_with(alice)
    assert notes["kind"] == "direct"
    assert notes["member_ids"] == [alice.id]
    assert (await open_with(alice, alice))["id"] == notes["id"]
    assert (await alice.send(notes["id"], "remember the milk"))["seq"] == 1


async def test_guest_may_open_a_conversation_with_themself(guest: Person) -> None:
    notes = await open_with(guest)
    assert notes["member_ids"] == [guest.id]


async def test_group_of_eight_is_allowed_and_nine_refused(org: Org, alice: Person) -> None:
    others = [await org.person("grp") for _ in range(8)]
    eight = await open_with(alice, *others[:7])
    assert eight["kind"] == "group"
    assert eight["member_ids"] == sorted([alice.id, *(p.id for p in others[:7])])
    with_self = await open_with(alice, alice, *others[:7])
    assert with_self["id"] == eight["id"], "naming yourself does not add a ninth person"
    nine = await alice.post(CONVERSATIONS, {"user_ids": [p.id for p in others]})
    assert nine.status_code == 422
    assert nine.json()["code"] == "too_many_participants"
    assert len(await conversations_of(others[7])) == 0


async def test_open_refused_when_user_is_unknown_or_deactivated(
    org: Org, alice: Person, bob: Person
) -> None:
    gone = await org.person("gone")
    assert (await org.owner.post(f"/api/v1/users/{gone.id}/deactivate")).status_code == 200
    for ids in ([MISSING_ID], [gone.id], [bob.id, gone.id], [bob.id, MISSING_ID]):
        response = await alice.post(CONVERSATIONS, {"user_ids": ids})
        assert response.status_code == 422, ids
        assert response.json()["code"] == "unknown_user"
        assert response.json()["field"] == "user_ids"
    assert await conversations_of(alice) == []
    for body in ({"user_ids": [0]}, {"user_ids": ["2"]}, {}, {"user_ids": list(range(1, 51))}):
        assert (await alice.post(CONVERSATIONS, body)).status_code == 422, body


async def test_guest_opens_conversation_only_with_people_sharing_a_channel(
    org: Org, admin: Person, alice: Person, bob: Person, guest: Person
) -> None:
    unshared = await guest.post(CONVERSATIONS, {"user_ids": [alice.id]})
    assert unshared.status_code == 404
    assert unshared.json()["code"] == "not_found"
    channel = await admin.create_channel(private=True, member_ids=[guest.id, alice.id])
    assert channel["member_count"] == 3
    dm = await open_with(guest, alice)
    assert dm["member_ids"] == sorted([guest.id, alice.id])
    mixed = await guest.post(CONVERSATIONS, {"user_ids": [alice.id, bob.id]})
    assert mixed.status_code == 404, "every participant must share a channel with the guest"
    assert (await open_with(bob, guest))["kind"] == "direct", "members may message a guest"


async def test_guest_cannot_tell_unknown_ids_from_people_they_may_not_see(
    org: Org, alice: Person, guest: Person
) -> None:
    gone = await org.person("gone")
    assert (await org.owner.post(f"/api/v1/users/{gone.id}/deactivate")).status_code == 200
    hidden = await guest.post(CONVERSATIONS, {"user_ids": [alice.id]})
    missing = await guest.post(CONVERSATIONS, {"user_ids": [MISSING_ID]})
    deactivated = await guest.post(CONVERSATIONS, {"user_ids": [gone.id]})
    assert problem_of(hidden)[0] == 404
    assert problem_of(missing) == problem_of(hidden)
    assert problem_of(deactivated) == problem_of(hidden)


async def test_conversations_cannot_be_renamed_archived_left_or_changed(
    alice: Person, bob: Person, carol: Person, admin: Person
) -> None:
    for people in ((bob,), (bob, carol)):
        conversation = await open_with(alice, *people)
        path = f"{CHANNELS}/{conversation['id']}"
        refusals = [
            (alice.patch(path, {"name": "ours"}), "conversation_has_no_name"),
            (alice.post(f"{path}/archive"), "conversation_not_archivable"),
            (alice.post(f"{path}/leave"), "conversation_not_leavable"),
            (alice.post(f"{path}/members", {"user_ids": [admin.id]}), "conversation_members_fixed"),
            (alice.delete(f"{path}/members/{bob.id}"), "conversation_members_fixed"),
        ]
        for request, code in refusals:
            response = await request
            assert response.status_code == 422, code
            assert response.json()["code"] == code
        after = (await alice.get(path)).json()["channel"]
        assert after["name"] == ""
        assert after["archived_at"] is None
        assert after["member_ids"] == conversation["member_ids"]


async def test_conversation_is_hidden_from_everyone_else_including_admins(
    alice: Person, bob: Person, carol: Person, admin: Person
) -> None:
    dm = await open_with(alice, bob)
    await alice.send(dm["id"], "just between us")
    for outsider in (carol, admin):
        for path in ("", "/messages", "/members"):
            hidden = await outsider.get(f"{CHANNELS}/{dm['id']}{path}")
            missing = await outsider.get(f"{CHANNELS}/{MISSING_ID}{path}")
            assert hidden.status_code == 404, (outsider.username, path)
            assert problem_of(hidden) == problem_of(missing)
        post = await outsider.post(f"{CHANNELS}/{dm['id']}/messages", {"text": "hi"})
        assert post.status_code == 404
        assert (await outsider.post(f"{CHANNELS}/{dm['id']}/join")).status_code == 404
    archive = await admin.post(f"{CHANNELS}/{dm['id']}/archive")
    assert archive.status_code == 404
    browsed = await admin.get(f"{CHANNELS}/browse", params={"include_private": True})
    assert dm["id"] not in [c["id"] for c in browsed.json()["channels"]]


async def test_conversation_messages_count_as_unread_for_the_other_side(
    alice: Person, bob: Person
) -> None:
    dm = await open_with(alice, bob)
    await alice.send(dm["id"], f"@{bob.username} ping")
    await alice.send(dm["id"], "another")
    row = (await conversations_of(bob))[0]
    assert (row["unread_count"], row["mention_count"]) == (2, 1)
    assert (await conversations_of(alice))[0]["unread_count"] == 0


async def test_concurrent_opens_of_one_conversation_return_one_channel(
    alice: Person, bob: Person, carol: Person
) -> None:
    pair = [
        (person.post(CONVERSATIONS, {"user_ids": [other.id]}))
        for person, other in [(alice, bob), (bob, alice)] * 4
    ]
    responses = await asyncio.gather(*pair)
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.json()["member_ids"] == sorted([alice.id, bob.id]) for r in responses)
    trio = await asyncio.gather(
        *(
            person.post(CONVERSATIONS, {"user_ids": [p.id for p in (alice, bob, carol)]})
            for person in (alice, bob, carol, alice, bob, carol)
        )
    )
    assert [r.status_code for r in trio] == [200] * 6, [r.text for r in trio]
    assert len({r.json()["id"] for r in trio}) == 1
    assert len(await conversations_of(alice)) == 2
    listed = await conversations_of(carol)
    assert [r["channel"]["member_count"] for r in listed] == [3]


async def test_conversation_can_be_muted_and_starred_by_a_participant(
    alice: Person, bob: Person
) -> None:
    dm = await open_with(alice, bob)
    response = await bob.put(f"{CHANNELS}/{dm['id']}/preferences", {"muted": True})
    assert response.status_code == 200
    assert response.json()["membership"]["muted"] is True
    assert (await conversations_of(bob))[0]["membership"]["muted"] is True
    assert (await conversations_of(alice))[0]["membership"]["muted"] is False


async def test_largest_configured_group_opens_when_user_ids_are_long(
    databases: DatabaseFactory, workdir: Path, db_backend: str, request: pytest.FixtureRequest
) -> None:
    async with org_context(databases, workdir, messaging={"max_group_members": 50}) as own:
        if db_backend == "postgres":
            # An organisation that has had ten thousand accounts: five-digit user ids.
            # (SQLite does not enforce VARCHAR lengths, so there the ids can stay short.)
            engine = own.server.services.context.storage.database.engine
            async with engine.begin() as conn:
                await conn.execute(
                    text("SELECT setval(pg_get_serial_sequence('users', 'id'), 10000)")
                )
        people = [await own.person("crowd") for _ in range(50)]
        response = await people[0].post(CONVERSATIONS, {"user_ids": [p.id for p in people[1:]]})
        assert response.status_code == 200, response.text
        assert len(response.json()["member_ids"]) == 50
