"""Sending, editing, deleting and paging messages."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import Person, QueryCounter


async def test_send_assigns_gapless_sequence_and_records_mentions(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    first = await alice.send(channel["id"], f"hi @{bob.username} and `@{alice.username}`")
    second = await bob.send(channel["id"], "hello @channel")
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["mentioned_user_ids"] == [bob.id]
    assert second["mentions_channel"] is True

    listing = (await bob.get("/api/v1/channels")).json()["channels"]
    mine = next(c for c in listing if c["channel"]["id"] == channel["id"])
    # Bob posted last, so he has read everything; Alice's message mentioned him before that.
    assert mine["unread_count"] == 0
    alice_view = next(
        c
        for c in (await alice.get("/api/v1/channels")).json()["channels"]
        if c["channel"]["id"] == channel["id"]
    )
    assert alice_view["unread_count"] == 1
    assert alice_view["mention_count"] == 1


async def test_retried_send_with_same_key_returns_the_first_message(alice: Person) -> None:
    channel = await alice.create_channel()
    path = f"/api/v1/channels/{channel['id']}/messages"
    first = await alice.post(path, {"text": "once", "client_message_id": "key-1"})
    again = await alice.post(path, {"text": "once", "client_message_id": "key-1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    history = (await alice.get(path)).json()["messages"]
    assert [m["text"] for m in history] == ["once"]


async def test_concurrent_sends_with_same_key_store_one_message(alice: Person) -> None:
    channel = await alice.create_channel()
    path = f"/api/v1/channels/{channel['id']}/messages"
    responses = await asyncio.gather(
        *(alice.post(path, {"text": "racy", "client_message_id": "same"}) for _ in range(8))
    )
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status_code for r in responses).count(201) == 1
    follow = await alice.send(channel["id"], "next")
    assert follow["seq"] == 2, "the losers' sequence numbers must have rolled back"


async def test_edit_keeps_history_for_author_and_admins_only(
    alice: Person, bob: Person, admin: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"], "first draft")
    edited = await alice.patch(f"/api/v1/messages/{message['id']}", {"text": "final text"})
    assert edited.status_code == 200
    assert edited.json()["text"] == "final text"
    assert edited.json()["edited_at"] is not None

    versions = await alice.get(f"/api/v1/messages/{message['id']}/versions")
    assert [v["text"] for v in versions.json()["versions"]] == ["first draft"]
    assert (await admin.get(f"/api/v1/messages/{message['id']}/versions")).status_code == 200
    refused = await bob.get(f"/api/v1/messages/{message['id']}/versions")
    assert refused.status_code == 403
    not_author = await bob.patch(f"/api/v1/messages/{message['id']}", {"text": "hijack"})
    assert not_author.status_code == 403


async def test_delete_hides_text_but_keeps_place(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    message = await alice.send(channel["id"], "oops secret")
    assert (await bob.delete(f"/api/v1/messages/{message['id']}")).status_code == 403
    deleted = await alice.delete(f"/api/v1/messages/{message['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["text"] == ""
    seen = (await bob.get(f"/api/v1/messages/{message['id']}")).json()
    assert seen["text"] == ""
    assert seen["deleted_at"] is not None
    again = await alice.delete(f"/api/v1/messages/{message['id']}")
    assert again.status_code == 404


async def test_history_pages_before_after_and_around(alice: Person) -> None:
    channel = await alice.create_channel()
    for n in range(1, 11):
        await alice.send(channel["id"], f"m{n}")
    path = f"/api/v1/channels/{channel['id']}/messages"
    latest = (await alice.get(path, params={"limit": 3})).json()
    assert [m["text"] for m in latest["messages"]] == ["m8", "m9", "m10"]
    assert latest["has_more_before"] is True
    assert latest["has_more_after"] is False
    before = (await alice.get(path, params={"limit": 3, "before": 8})).json()
    assert [m["seq"] for m in before["messages"]] == [5, 6, 7]
    assert before["has_more_after"] is True
    after = (await alice.get(path, params={"limit": 4, "after": 7})).json()
    assert [m["seq"] for m in after["messages"]] == [8, 9, 10]
    assert after["has_more_after"] is False
    assert after["has_more_before"] is True
    around = (await alice.get(path, params={"limit": 4, "around": 5})).json()
    assert [m["seq"] for m in around["messages"]] == [3, 4, 5, 6]
    both = await alice.get(path, params={"before": 3, "after": 1})
    assert both.status_code == 422


async def test_history_page_flags_and_extras_at_every_edge(alice: Person, bob: Person) -> None:
    """The one-statement page: far-side flags at both ends, and reactions, mentions and files
    attached to the right messages in the right order, for channel and thread pages."""
    channel = await alice.create_channel(member_ids=[bob.id])
    path = f"/api/v1/channels/{channel['id']}/messages"
    empty = (await alice.get(path, params={"before": 5})).json()
    assert empty == {"messages": [], "has_more_before": False, "has_more_after": False}
    sent = [await alice.send(channel["id"], f"m{n}") for n in range(1, 7)]
    mention = await bob.send(channel["id"], f"cc @{alice.username}")  # seq 7
    upload = await alice.client.post(
        "/api/v1/files", files={"file": ("notes.txt", b"notes\n" * 10, "text/plain")}
    )
    assert upload.status_code == 201, upload.text
    attached = await alice.post(path, {"text": "file", "file_ids": [upload.json()["id"]]})
    assert attached.status_code == 201, attached.text  # seq 8
    thumbs, party = "%F0%9F%91%8D", "%F0%9F%8E%89"
    target = sent[2]["id"]  # seq 3
    for who, emoji in ((bob, party), (alice, thumbs), (bob, thumbs)):
        assert (await who.put(f"/api/v1/messages/{target}/reactions/{emoji}")).status_code in (
            200,
            201,
            204,
        )

    def seqs(page: dict[str, Any]) -> list[int]:
        return [m["seq"] for m in page["messages"]]

    async def page(**params: int) -> dict[str, Any]:
        response = await bob.get(path, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    oldest = await page(before=1)
    assert (seqs(oldest), oldest["has_more_before"], oldest["has_more_after"]) == ([], False, True)
    newest = await page(after=8)
    assert (seqs(newest), newest["has_more_before"], newest["has_more_after"]) == ([], True, False)
    beyond = await page(before=100, limit=3)
    assert (seqs(beyond), beyond["has_more_before"], beyond["has_more_after"]) == (
        [6, 7, 8],
        True,
        False,
    )
    first = await page(after=0, limit=3)
    assert (seqs(first), first["has_more_before"], first["has_more_after"]) == (
        [1, 2, 3],
        False,
        True,
    )
    whole = await page(after=0, limit=8)
    assert (seqs(whole), whole["has_more_before"], whole["has_more_after"]) == (
        list(range(1, 9)),
        False,
        False,
    )
    exact = await page(before=9, limit=8)
    assert (exact["has_more_before"], exact["has_more_after"]) == (False, False)
    by_seq = {m["seq"]: m for m in whole["messages"]}
    assert [(r["emoji"], r["user_ids"]) for r in by_seq[3]["reactions"]] == [
        ("\N{PARTY POPPER}", [bob.id]),
        ("\N{THUMBS UP SIGN}", [alice.id, bob.id]),
    ]
    assert by_seq[7]["mentioned_user_ids"] == [alice.id]
    assert [a["name"] for a in by_seq[8]["attachments"]] == ["notes.txt"]
    assert all(not by_seq[n]["reactions"] for n in (1, 2, 4, 5, 6, 7, 8))
    assert all(not by_seq[n]["attachments"] for n in range(1, 8))
    assert mention["seq"] == 7

    root = sent[0]["id"]
    for n in range(3):
        await bob.send(channel["id"], f"r{n}", thread_root_id=root)
    replies = (
        await bob.get(f"/api/v1/messages/{root}/thread", params={"limit": 2, "before": 100})
    ).json()["replies"]
    assert [m["text"] for m in replies["messages"]] == ["r1", "r2"]
    assert (replies["has_more_before"], replies["has_more_after"]) == (True, False)


async def test_threads_update_root_summary_and_stay_out_of_channel_history(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    root = await alice.send(channel["id"], "root")
    await bob.send(channel["id"], "reply 1", thread_root_id=root["id"])
    await alice.send(channel["id"], "reply 2", thread_root_id=root["id"])
    thread = (await bob.get(f"/api/v1/messages/{root['id']}/thread")).json()
    assert thread["root"]["reply_count"] == 2
    assert thread["root"]["reply_participant_ids"] == [bob.id, alice.id]
    assert thread["root"]["last_reply_at"] is not None
    assert [m["text"] for m in thread["replies"]["messages"]] == ["reply 1", "reply 2"]
    history = (await bob.get(f"/api/v1/channels/{channel['id']}/messages")).json()["messages"]
    assert [m["text"] for m in history] == ["root"]
    nested = await bob.post(
        f"/api/v1/channels/{channel['id']}/messages",
        {"text": "deeper", "thread_root_id": thread["replies"]["messages"][0]["id"]},
    )
    assert nested.status_code == 422


async def test_history_page_costs_constant_queries(
    alice: Person, bob: Person, queries: QueryCounter
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    for n in range(30):
        message = await alice.send(channel["id"], f"m{n}")
        if n % 3 == 0:
            await bob.put(f"/api/v1/messages/{message['id']}/reactions/%F0%9F%91%8D")
    path = f"/api/v1/channels/{channel['id']}/messages"
    with queries.counting() as small:
        await bob.get(path, params={"limit": 5})
    with queries.counting() as large:
        await bob.get(path, params={"limit": 30})
    assert small.count == large.count, large.statements
    # One statement: the rows, the far-side flag, the extras and the access facts.
    assert large.count == 1, large.statements
