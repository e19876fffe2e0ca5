"""Channels: creating, browsing, visibility, membership, archiving, changes and preferences."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support import Org, Person, unique

CHANNELS = "/api/v1/channels"
MISSING_ID = 2**62


def problem_of(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    """Status and problem body without ``instance`` (which only echoes the request path)."""
    body = dict(response.json())
    body.pop("instance", None)
    return response.status_code, body


async def listing(person: Person) -> dict[int, dict[str, Any]]:
    """The person's channel list, keyed by channel id."""
    response = await person.get(CHANNELS)
    assert response.status_code == 200, response.text
    return {row["channel"]["id"]: row for row in response.json()["channels"]}


async def member_ids(person: Person, channel_id: int) -> list[int]:
    """Every member of a channel, following the cursor."""
    found: list[int] = []
    cursor = 0
    while True:
        response = await person.get(
            f"{CHANNELS}/{channel_id}/members", params={"cursor": cursor, "limit": 2}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(m["user_id"] for m in page["members"])
        if page["next_cursor"] is None:
            return found
        cursor = page["next_cursor"]


async def browse_everything(person: Person, **params: Any) -> list[dict[str, Any]]:
    """Every channel the browser offers with these parameters, following the cursor."""
    found: list[dict[str, Any]] = []
    cursor = 0
    for _ in range(100):
        response = await person.get(f"{CHANNELS}/browse", params={**params, "cursor": cursor})
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["channels"])
        if page["next_cursor"] is None:
            return found
        cursor = page["next_cursor"]
    raise AssertionError("the browser never reached the end")


# --- creating ----------------------------------------------------------------------------------


async def test_create_public_channel_makes_creator_and_listed_people_members(
    alice: Person, bob: Person, carol: Person
) -> None:
    name = unique("launch")
    response = await alice.post(
        CHANNELS, {"name": name, "topic": "Go live", "purpose": "Ship it", "member_ids": [bob.id]}
    )
    assert response.status_code == 201, response.text
    channel = response.json()
    assert channel["kind"] == "public"
    assert channel["name"] == name
    assert (channel["topic"], channel["purpose"]) == ("Go live", "Ship it")
    assert channel["created_by"] == alice.id
    assert channel["member_count"] == 2
    assert channel["archived_at"] is None
    assert await member_ids(alice, channel["id"]) == sorted([alice.id, bob.id])
    assert channel["id"] in await listing(alice)
    assert channel["id"] in await listing(bob)
    assert channel["id"] not in await listing(carol)


async def test_create_private_channel_when_private_is_true(
    alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(private=True, member_ids=[bob.id, alice.id, bob.id])
    assert channel["kind"] == "private"
    assert channel["member_count"] == 2, "the creator and duplicates are counted once"
    assert (await bob.get(f"{CHANNELS}/{channel['id']}")).status_code == 200
    assert (await carol.get(f"{CHANNELS}/{channel['id']}")).status_code == 404
    mine = (await listing(bob))[channel["id"]]
    assert mine["membership"]["user_id"] == bob.id


async def test_create_refuses_name_taken_when_only_case_differs(alice: Person, bob: Person) -> None:
    name = unique("Plan-X")
    await alice.create_channel(name)
    for clash in (name.lower(), name.upper(), f"  {name}  "):
        response = await bob.post(CHANNELS, {"name": clash, "private": True})
        assert response.status_code == 409, clash
        assert response.json()["code"] == "channel_name_taken"
        assert response.json()["field"] == "name"


async def test_concurrent_creates_with_one_name_make_one_channel(
    alice: Person, bob: Person
) -> None:
    name = unique("race")
    responses = await asyncio.gather(
        *(person.post(CHANNELS, {"name": name}) for person in (alice, bob) * 4)
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    found = (await alice.get(f"{CHANNELS}/browse", params={"q": name})).json()["channels"]
    assert len(found) == 1


async def test_create_refuses_name_taken_when_unicode_forms_differ(alice: Person) -> None:
    suffix = unique("")
    await alice.create_channel(f"Café{suffix}")
    decomposed = await alice.post(CHANNELS, {"name": f"Cafe\u0301{suffix}"})
    assert decomposed.status_code == 409, "NFC normalisation makes these the same name"
    await alice.create_channel(f"Straße{suffix}")
    folded = await alice.post(CHANNELS, {"name": f"STRASSE{suffix}"})
    assert folded.status_code == 409, "case folding, not just lower-casing"


async def test_chinese_channel_names_work_when_created_browsed_and_renamed(
    fresh_org: Org,
) -> None:
    alice = await fresh_org.person("alice")
    created = await alice.create_channel("数据安全", topic="讨论数据保护")
    assert created["name"] == "数据安全"
    assert created["topic"] == "讨论数据保护"
    fetched = (await alice.get(f"{CHANNELS}/{created['id']}")).json()
    assert fetched["channel"]["name"] == "数据安全"
    found = (await alice.get(f"{CHANNELS}/browse", params={"q": "安全"})).json()["channels"]
    assert [c["id"] for c in found] == [created["id"]]
    again = await alice.post(CHANNELS, {"name": "数据安全"})
    assert again.status_code == 409
    renamed = await alice.patch(f"{CHANNELS}/{created['id']}", {"name": "网络安全"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "网络安全"
    assert (await alice.post(CHANNELS, {"name": "数据安全"})).status_code == 201


@pytest.mark.parametrize(
    "bad",
    [
        "bell\x07",
        "tab\tname",
        "line\nbreak",
        "del\x7f",
        "evil\u202etxt.exe",
        "iso\u2066late",
        "zero\u200bwidth",
        "bom\ufeff",
        "soft\u00adhyphen",
        "private\ue000use",
    ],
)
async def test_create_refuses_name_when_it_has_control_or_bidi_characters(
    alice: Person, bad: str
) -> None:
    response = await alice.post(CHANNELS, {"name": unique("x") + bad})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "forbidden_character"
    assert response.json()["field"] == "name"


async def test_create_refuses_bad_names_and_topics_with_422(alice: Person) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "empty"),
        ({"name": "   "}, "empty"),
        ({"name": unique("ok"), "topic": "bidi\u202e"}, "forbidden_character"),
        ({"name": unique("ok"), "purpose": "ctl\x1b[31m"}, "forbidden_character"),
        ({"name": "x" * 81}, "validation_failed"),
        ({"name": unique("ok"), "topic": "t" * 251}, "validation_failed"),
        ({"name": unique("ok"), "colour": "red"}, "validation_failed"),
    ]
    for body, code in cases:
        response = await alice.post(CHANNELS, body)
        assert response.status_code == 422, body
        assert response.json()["code"] == code, body
    nul = await alice.post(CHANNELS, {"name": "nul\x00"})
    assert (nul.status_code, nul.json()["code"]) == (400, "nul_character")


async def test_create_trims_and_normalises_names(alice: Person) -> None:
    suffix = unique("")
    channel = await alice.create_channel(f"  Cafe\u0301{suffix}  ")
    assert channel["name"] == f"Café{suffix}"
    emoji = await alice.create_channel(f"👩\u200d💻{suffix}")
    assert emoji["name"] == f"👩\u200d💻{suffix}", "the zero-width joiner in emoji is allowed"
    longest = await alice.create_channel(("数" * 80)[: 80 - len(suffix)] + suffix)
    assert len(longest["name"]) == 80


async def test_guests_cannot_create_channels(guest: Person) -> None:
    name = unique("guestly")
    response = await guest.post(CHANNELS, {"name": name})
    assert response.status_code == 403
    assert response.json()["code"] == "guest_not_allowed"
    found = (await guest.get(CHANNELS)).json()["channels"]
    assert found == []


async def test_create_leaves_no_channel_when_member_ids_are_refused(
    org: Org, alice: Person, guest: Person
) -> None:
    gone = await org.person("gone")
    assert (await org.owner.post(f"/api/v1/users/{gone.id}/deactivate")).status_code == 200
    name = unique("atomic")
    cases = [([guest.id], 403, "admin_required"), ([MISSING_ID], 422, "unknown_user")]
    cases.append(([gone.id], 422, "unknown_user"))
    for ids, status, code in cases:
        response = await alice.post(CHANNELS, {"name": name, "member_ids": ids})
        assert response.status_code == status, ids
        assert response.json()["code"] == code
    assert (await alice.create_channel(name))["member_count"] == 1, "the name was never taken"


async def test_admins_create_channels_with_guests(admin: Person, guest: Person) -> None:
    channel = await admin.create_channel(private=True, member_ids=[guest.id])
    assert channel["member_count"] == 2
    assert (await guest.get(f"{CHANNELS}/{channel['id']}")).status_code == 200
    assert (await guest.send(channel["id"], "hi"))["sender_id"] == guest.id


# --- browsing ----------------------------------------------------------------------------------


async def test_browse_offers_public_channels_only_when_not_admin(
    alice: Person, bob: Person
) -> None:
    tag = unique("brw")
    public = await alice.create_channel(f"{tag}-open")
    await alice.create_channel(f"{tag}-closed", private=True)
    for person in (alice, bob):
        found = await browse_everything(person, q=tag)
        assert [c["id"] for c in found] == [public["id"]]
        with_private = await browse_everything(person, q=tag, include_private=True)
        assert [c["id"] for c in with_private] == [public["id"]], "members never see private"


async def test_browse_filters_by_q_case_insensitively_and_literally(bob: Person) -> None:
    tag = unique("qf")
    alpha = await bob.create_channel(f"{tag}-Alpha")
    under = await bob.create_channel(f"{tag}_beta")
    pct = await bob.create_channel(f"{tag}%gamma")

    async def ids(q: str) -> list[int]:
        return [c["id"] for c in await browse_everything(bob, q=q)]

    assert await ids(tag) == [alpha["id"], under["id"], pct["id"]]
    assert await ids(f"{tag}-alpha".upper()) == [alpha["id"]]
    assert await ids(f"{tag}_") == [under["id"]], "'_' is not a wildcard"
    assert await ids(f"{tag}%") == [pct["id"]], "'%' is not a wildcard"
    assert await ids(unique("nothing-like-this")) == []
    too_long = await bob.get(f"{CHANNELS}/browse", params={"q": "q" * 81})
    assert too_long.status_code == 422


async def test_browse_pages_with_next_cursor(alice: Person) -> None:
    tag = unique("page")
    made = [(await alice.create_channel(f"{tag}-{n}"))["id"] for n in range(5)]
    seen: list[int] = []
    cursors: list[int | None] = []
    cursor = 0
    while True:
        page = (
            await alice.get(f"{CHANNELS}/browse", params={"q": tag, "limit": 2, "cursor": cursor})
        ).json()
        assert len(page["channels"]) <= 2
        seen.extend(c["id"] for c in page["channels"])
        cursors.append(page["next_cursor"])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == made
    assert cursors == [made[1], made[3], None]


async def test_browse_hides_archived_channels_unless_include_archived(alice: Person) -> None:
    tag = unique("arch")
    live = await alice.create_channel(f"{tag}-live")
    old = await alice.create_channel(f"{tag}-old")
    assert (await alice.post(f"{CHANNELS}/{old['id']}/archive")).status_code == 200
    assert [c["id"] for c in await browse_everything(alice, q=tag)] == [live["id"]]
    everything = await browse_everything(alice, q=tag, include_archived=True)
    assert [c["id"] for c in everything] == [live["id"], old["id"]]
    assert everything[1]["archived_at"] is not None


async def test_admins_browse_private_channels_when_include_private(
    admin: Person, alice: Person
) -> None:
    tag = unique("adm")
    public = await alice.create_channel(f"{tag}-open")
    private = await alice.create_channel(f"{tag}-closed", private=True)
    archived = await alice.create_channel(f"{tag}-gone", private=True)
    assert (await alice.post(f"{CHANNELS}/{archived['id']}/archive")).status_code == 200
    without = await browse_everything(admin, q=tag)
    assert [c["id"] for c in without] == [public["id"]]
    found = await browse_everything(admin, q=tag, include_private=True)
    assert [c["id"] for c in found] == [public["id"], private["id"]], (
        "q and include_archived apply to administrators too"
    )
    everything = await browse_everything(admin, q=tag, include_private=True, include_archived=True)
    assert [c["id"] for c in everything] == [public["id"], private["id"], archived["id"]]


async def test_guests_cannot_browse(guest: Person) -> None:
    response = await guest.get(f"{CHANNELS}/browse")
    assert response.status_code == 403
    assert response.json()["code"] == "guest_not_allowed"


# --- visibility --------------------------------------------------------------------------------


async def test_private_channel_is_not_found_for_outsiders_exactly_like_a_missing_id(
    alice: Person, carol: Person, guest: Person
) -> None:
    channel = await alice.create_channel(private=True)
    await alice.send(channel["id"], "secret plans")
    requests = [
        ("GET", ""),
        ("GET", "/messages"),
        ("POST", "/messages"),
        ("GET", "/members"),
        ("POST", "/join"),
        ("POST", "/leave"),
        ("POST", "/read"),
        ("PUT", "/preferences"),
        ("PATCH", ""),
        ("POST", "/archive"),
        ("POST", "/members"),
    ]
    bodies: dict[str, Any] = {
        "/messages": {"text": "hi"},
        "/read": {},
        "/preferences": {"muted": True},
        "": {"topic": "mine now"},
        "/members": {"user_ids": [carol.id]},
    }
    for outsider in (carol, guest):
        for method, suffix in requests:
            body = bodies.get(suffix) if method != "GET" else None
            hidden = await outsider.client.request(
                method, f"{CHANNELS}/{channel['id']}{suffix}", json=body
            )
            missing = await outsider.client.request(
                method, f"{CHANNELS}/{MISSING_ID}{suffix}", json=body
            )
            assert hidden.status_code == 404, (method, suffix, hidden.text)
            assert problem_of(hidden) == problem_of(missing), (method, suffix)
            assert hidden.json()["code"] == "not_found"
    assert (await alice.get(f"{CHANNELS}/{channel['id']}")).json()["channel"]["topic"] == ""


async def test_public_channel_is_readable_by_non_members_but_not_guests(
    alice: Person, bob: Person, guest: Person
) -> None:
    channel = await alice.create_channel(topic="all welcome")
    await alice.send(channel["id"], "open news")
    seen = await bob.get(f"{CHANNELS}/{channel['id']}")
    assert seen.status_code == 200
    assert seen.json()["membership"] is None
    assert seen.json()["channel"]["topic"] == "all welcome"
    history = await bob.get(f"{CHANNELS}/{channel['id']}/messages")
    assert [m["text"] for m in history.json()["messages"]] == ["open news"]
    assert await member_ids(bob, channel["id"]) == [alice.id]
    assert channel["id"] not in await listing(bob)
    for path in ("", "/messages", "/members"):
        hidden = await guest.get(f"{CHANNELS}/{channel['id']}{path}")
        missing = await guest.get(f"{CHANNELS}/{MISSING_ID}{path}")
        assert problem_of(hidden) == problem_of(missing)
        assert hidden.status_code == 404


async def test_posting_requires_membership_when_channel_is_public(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel()
    path = f"{CHANNELS}/{channel['id']}/messages"
    refused = await bob.post(path, {"text": "drive-by"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_a_member"
    assert (await alice.get(path)).json()["messages"] == []
    assert (await bob.post(f"{CHANNELS}/{channel['id']}/join")).status_code == 200
    assert (await bob.post(path, {"text": "now a member"})).status_code == 201


# --- joining and leaving -----------------------------------------------------------------------


async def test_join_public_channel_is_idempotent(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel()
    first = await bob.post(f"{CHANNELS}/{channel['id']}/join")
    second = await bob.post(f"{CHANNELS}/{channel['id']}/join")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["member_count"] == 2
    assert second.json()["member_count"] == 2
    assert await member_ids(alice, channel["id"]) == sorted([alice.id, bob.id])
    assert channel["id"] in await listing(bob)


async def test_concurrent_joins_by_one_person_make_one_membership(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel()
    responses = await asyncio.gather(
        *(bob.post(f"{CHANNELS}/{channel['id']}/join") for _ in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    fetched = (await alice.get(f"{CHANNELS}/{channel['id']}")).json()["channel"]
    assert fetched["member_count"] == 2
    assert await member_ids(alice, channel["id"]) == sorted([alice.id, bob.id])


async def test_guests_cannot_join_public_channels_by_themselves(
    alice: Person, admin: Person, guest: Person
) -> None:
    channel = await alice.create_channel()
    response = await guest.post(f"{CHANNELS}/{channel['id']}/join")
    assert response.status_code == 404, "a public channel does not exist for a guest"
    assert channel["id"] not in await listing(guest)
    added = await admin.post(f"{CHANNELS}/{channel['id']}/members", {"user_ids": [guest.id]})
    assert added.status_code == 200
    again = await guest.post(f"{CHANNELS}/{channel['id']}/join")
    assert again.status_code == 200, "joining a channel you are in is harmless"


async def test_join_refused_when_channel_is_archived_or_private(alice: Person, bob: Person) -> None:
    archived = await alice.create_channel()
    assert (await alice.post(f"{CHANNELS}/{archived['id']}/archive")).status_code == 200
    refused = await bob.post(f"{CHANNELS}/{archived['id']}/join")
    assert refused.status_code == 403
    assert refused.json()["code"] == "channel_archived"
    private = await alice.create_channel(private=True)
    assert (await bob.post(f"{CHANNELS}/{private['id']}/join")).status_code == 404
    assert await member_ids(alice, private["id"]) == [alice.id]


async def test_leave_ends_membership_and_access_to_private_channels(
    alice: Person, bob: Person
) -> None:
    private = await alice.create_channel(private=True, member_ids=[bob.id])
    public = await alice.create_channel(member_ids=[bob.id])
    for channel in (private, public):
        left = await bob.post(f"{CHANNELS}/{channel['id']}/leave")
        assert left.status_code == 204
        assert channel["id"] not in await listing(bob)
        assert await member_ids(alice, channel["id"]) == [alice.id]
    assert (await bob.get(f"{CHANNELS}/{private['id']}/messages")).status_code == 404
    assert (await bob.post(f"{CHANNELS}/{private['id']}/leave")).status_code == 404
    again = await bob.post(f"{CHANNELS}/{public['id']}/leave")
    assert again.status_code == 409
    assert again.json()["code"] == "not_a_member"
    fetched = (await alice.get(f"{CHANNELS}/{public['id']}")).json()["channel"]
    assert fetched["member_count"] == 1


# --- adding and removing members ---------------------------------------------------------------


async def test_members_add_non_guests_when_public_or_private(
    alice: Person, bob: Person, carol: Person
) -> None:
    for private in (False, True):
        channel = await alice.create_channel(private=private)
        added = await alice.post(f"{CHANNELS}/{channel['id']}/members", {"user_ids": [bob.id]})
        assert added.status_code == 200
        assert added.json()["member_count"] == 2
        by_bob = await bob.post(
            f"{CHANNELS}/{channel['id']}/members", {"user_ids": [carol.id, bob.id]}
        )
        assert by_bob.status_code == 200, "any member may add people; existing ones are skipped"
        assert by_bob.json()["member_count"] == 3
        assert await member_ids(carol, channel["id"]) == sorted([alice.id, bob.id, carol.id])


async def test_only_admins_add_guests(alice: Person, admin: Person, guest: Person) -> None:
    channel = await alice.create_channel(private=True)
    refused = await alice.post(f"{CHANNELS}/{channel['id']}/members", {"user_ids": [guest.id]})
    assert refused.status_code == 403
    assert refused.json()["code"] == "admin_required"
    assert (await guest.get(f"{CHANNELS}/{channel['id']}")).status_code == 404
    added = await admin.post(f"{CHANNELS}/{channel['id']}/members", {"user_ids": [guest.id]})
    assert added.status_code == 200, "administrators reach private channels they are not in"
    assert (await guest.get(f"{CHANNELS}/{channel['id']}")).status_code == 200
    assert admin.id not in await member_ids(alice, channel["id"])


async def test_add_members_refused_when_actor_is_outsider_or_guest(
    alice: Person, bob: Person, carol: Person, admin: Person, guest: Person
) -> None:
    public = await alice.create_channel()
    outsider = await bob.post(f"{CHANNELS}/{public['id']}/members", {"user_ids": [carol.id]})
    assert outsider.status_code == 403
    assert outsider.json()["code"] == "not_a_member"
    private = await alice.create_channel(private=True)
    hidden = await bob.post(f"{CHANNELS}/{private['id']}/members", {"user_ids": [carol.id]})
    assert hidden.status_code == 404
    shared = await admin.create_channel(member_ids=[guest.id])
    by_guest = await guest.post(f"{CHANNELS}/{shared['id']}/members", {"user_ids": [carol.id]})
    assert by_guest.status_code == 403
    assert by_guest.json()["code"] == "not_channel_manager"
    assert await member_ids(alice, shared["id"]) == sorted([admin.id, guest.id])


async def test_add_members_refused_when_user_is_unknown_or_deactivated(
    org: Org, alice: Person, bob: Person
) -> None:
    gone = await org.person("gone")
    assert (await org.owner.post(f"/api/v1/users/{gone.id}/deactivate")).status_code == 200
    channel = await alice.create_channel()
    for bad in (MISSING_ID, gone.id):
        response = await alice.post(
            f"{CHANNELS}/{channel['id']}/members", {"user_ids": [bob.id, bad]}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_user"
        assert response.json()["field"] == "user_ids"
    assert await member_ids(alice, channel["id"]) == [alice.id], "nothing was added"
    for body in ({"user_ids": []}, {"user_ids": [0]}, {}):
        assert (await alice.post(f"{CHANNELS}/{channel['id']}/members", body)).status_code == 422


async def test_only_creator_or_admin_removes_members(
    alice: Person, bob: Person, carol: Person, admin: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id, carol.id])
    path = f"{CHANNELS}/{channel['id']}/members"
    refused = await bob.delete(f"{path}/{carol.id}")
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_channel_manager"
    assert (await alice.delete(f"{path}/{carol.id}")).status_code == 204
    assert (await admin.delete(f"{path}/{bob.id}")).status_code == 204
    assert await member_ids(alice, channel["id"]) == [alice.id]
    missing = await alice.delete(f"{path}/{carol.id}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_a_member"
    fetched = (await alice.get(f"{CHANNELS}/{channel['id']}")).json()["channel"]
    assert fetched["member_count"] == 1


async def test_removed_member_gets_not_found_when_channel_is_private(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(private=True, member_ids=[bob.id])
    message = await alice.send(channel["id"], "before")
    assert (await bob.get(f"{CHANNELS}/{channel['id']}/messages")).status_code == 200
    assert (await alice.delete(f"{CHANNELS}/{channel['id']}/members/{bob.id}")).status_code == 204
    for path in (f"{CHANNELS}/{channel['id']}/messages", f"{CHANNELS}/{channel['id']}"):
        assert (await bob.get(path)).status_code == 404
    assert (await bob.get(f"/api/v1/messages/{message['id']}")).status_code == 404
    refused = await bob.post(f"{CHANNELS}/{channel['id']}/messages", {"text": "still here?"})
    assert refused.status_code == 404
    assert channel["id"] not in await listing(bob)


async def test_creator_loses_manager_rights_when_no_longer_a_member(
    alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id, carol.id])
    assert (await alice.post(f"{CHANNELS}/{channel['id']}/leave")).status_code == 204
    refused = await alice.delete(f"{CHANNELS}/{channel['id']}/members/{carol.id}")
    assert refused.status_code == 403
    archive = await alice.post(f"{CHANNELS}/{channel['id']}/archive")
    assert archive.status_code == 403


# --- archiving ---------------------------------------------------------------------------------


async def test_only_creator_or_admin_archives_and_unarchives(
    alice: Person, bob: Person, admin: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    refused = await bob.post(f"{CHANNELS}/{channel['id']}/archive")
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_channel_manager"
    archived = await alice.post(f"{CHANNELS}/{channel['id']}/archive")
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    twice = await alice.post(f"{CHANNELS}/{channel['id']}/archive")
    assert twice.json()["archived_at"] == archived.json()["archived_at"]
    assert (await bob.post(f"{CHANNELS}/{channel['id']}/unarchive")).status_code == 403
    restored = await admin.post(f"{CHANNELS}/{channel['id']}/unarchive")
    assert restored.status_code == 200
    assert restored.json()["archived_at"] is None
    private = await alice.create_channel(private=True)
    assert (await admin.post(f"{CHANNELS}/{private['id']}/archive")).status_code == 200


async def test_archived_channel_refuses_writes_but_stays_readable(
    alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"], "last words")
    assert (await alice.post(f"{CHANNELS}/{channel['id']}/archive")).status_code == 200
    writes = [
        alice.post(f"{CHANNELS}/{channel['id']}/messages", {"text": "more"}),
        bob.post(
            f"{CHANNELS}/{channel['id']}/messages",
            {"text": "reply", "thread_root_id": message["id"]},
        ),
        bob.put(f"/api/v1/messages/{message['id']}/reactions/%F0%9F%91%8D"),
        alice.patch(f"/api/v1/messages/{message['id']}", {"text": "rewritten"}),
        bob.patch(f"{CHANNELS}/{channel['id']}", {"topic": "new"}),
        alice.post(f"{CHANNELS}/{channel['id']}/members", {"user_ids": [carol.id]}),
    ]
    for response in await asyncio.gather(*writes):
        assert response.status_code == 403, response.request.url
        assert response.json()["code"] == "channel_archived"
    history = (await bob.get(f"{CHANNELS}/{channel['id']}/messages")).json()["messages"]
    assert [(m["text"], m["reactions"]) for m in history] == [("last words", [])]
    assert (await carol.get(f"{CHANNELS}/{channel['id']}")).status_code == 200
    assert (await listing(bob))[channel["id"]]["channel"]["archived_at"] is not None

    assert (await alice.post(f"{CHANNELS}/{channel['id']}/unarchive")).status_code == 200
    assert (await alice.send(channel["id"], "back"))["seq"] == 2
    reacted = await bob.put(f"/api/v1/messages/{message['id']}/reactions/%F0%9F%91%8D")
    assert reacted.status_code == 200
    edited = await alice.patch(f"/api/v1/messages/{message['id']}", {"text": "rewritten"})
    assert edited.status_code == 200


# --- changing a channel ------------------------------------------------------------------------


async def test_members_change_topic_purpose_and_name(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    new_name = unique("renamed")
    response = await bob.patch(
        f"{CHANNELS}/{channel['id']}",
        {"topic": "Q3 plans", "purpose": "Planning", "name": new_name},
    )
    assert response.status_code == 200
    assert (response.json()["topic"], response.json()["purpose"]) == ("Q3 plans", "Planning")
    assert response.json()["name"] == new_name
    partial = await bob.patch(f"{CHANNELS}/{channel['id']}", {"topic": ""})
    assert partial.json()["topic"] == ""
    assert partial.json()["purpose"] == "Planning", "omitted fields stay"
    fetched = (await alice.get(f"{CHANNELS}/{channel['id']}")).json()["channel"]
    assert (fetched["name"], fetched["topic"], fetched["purpose"]) == (new_name, "", "Planning")
    unchanged = await bob.patch(f"{CHANNELS}/{channel['id']}", {})
    assert unchanged.status_code == 200
    assert unchanged.json()["name"] == new_name


async def test_rename_frees_old_name_and_refuses_taken_ones(alice: Person) -> None:
    old, other = unique("Old"), unique("Other")
    channel = await alice.create_channel(old)
    await alice.create_channel(other)
    clash = await alice.patch(f"{CHANNELS}/{channel['id']}", {"name": other.upper()})
    assert clash.status_code == 409
    assert clash.json()["code"] == "channel_name_taken"
    same_name = await alice.patch(f"{CHANNELS}/{channel['id']}", {"name": old.upper()})
    assert same_name.status_code == 200, "a channel may change the case of its own name"
    assert same_name.json()["name"] == old.upper()
    moved = await alice.patch(f"{CHANNELS}/{channel['id']}", {"name": unique("New")})
    assert moved.status_code == 200
    assert (await alice.post(CHANNELS, {"name": old})).status_code == 201
    bad = await alice.patch(f"{CHANNELS}/{channel['id']}", {"name": "rtl\u202e"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "name"


async def test_update_refused_when_actor_is_guest_or_outsider(
    alice: Person, bob: Person, admin: Person, guest: Person
) -> None:
    channel = await admin.create_channel(member_ids=[guest.id, alice.id])
    by_guest = await guest.patch(f"{CHANNELS}/{channel['id']}", {"topic": "guest rules"})
    assert by_guest.status_code == 403
    assert by_guest.json()["code"] == "not_channel_manager"
    by_outsider = await bob.patch(f"{CHANNELS}/{channel['id']}", {"topic": "outsider"})
    assert by_outsider.status_code == 403
    assert by_outsider.json()["code"] == "not_a_member"
    fetched = (await alice.get(f"{CHANNELS}/{channel['id']}")).json()["channel"]
    assert fetched["topic"] == ""


async def test_admins_update_private_channels_they_are_not_in(alice: Person, admin: Person) -> None:
    channel = await alice.create_channel(private=True)
    response = await admin.patch(f"{CHANNELS}/{channel['id']}", {"topic": "set by admin"})
    assert response.status_code == 200
    fetched = (await alice.get(f"{CHANNELS}/{channel['id']}")).json()["channel"]
    assert fetched["topic"] == "set by admin"


# --- preferences -------------------------------------------------------------------------------


def flags(summary: dict[str, Any]) -> tuple[bool, bool]:
    """(muted, starred) of a channel summary."""
    return summary["membership"]["muted"], summary["membership"]["starred"]


async def test_preferences_mute_and_star_show_in_channel_list(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    path = f"{CHANNELS}/{channel['id']}/preferences"
    muted = await bob.put(path, {"muted": True})
    assert muted.status_code == 200
    assert flags(muted.json()) == (True, False)
    starred = await bob.put(path, {"starred": True})
    assert flags(starred.json()) == (True, True), "an omitted preference keeps its value"
    assert flags((await listing(bob))[channel["id"]]) == (True, True)
    assert flags((await listing(alice))[channel["id"]]) == (False, False), "only affects bob"
    await bob.put(path, {"muted": False})
    assert flags((await listing(bob))[channel["id"]]) == (False, True)


async def test_preferences_refused_when_not_a_member(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel()
    response = await bob.put(f"{CHANNELS}/{channel['id']}/preferences", {"starred": True})
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_member"
    typo = await alice.put(f"{CHANNELS}/{channel['id']}/preferences", {"stared": True})
    assert typo.status_code == 422
