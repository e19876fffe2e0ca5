"""Sending messages over the event socket: message.send -> message.ack / message.error.

A real server on a real socket (tests/support.py), on SQLite or PostgreSQL (--db).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.api.files_support import upload_ok
from tests.realtime.client import EventClient
from tests.realtime.raw import RawSocket, masked_frame
from tests.services.test_plugins import Censor, Gatekeeper, Observer, plugin_org
from tests.support import DatabaseFactory, Org, Person, org_context


def send_frame(channel_id: Any, text: Any, key: Any, **fields: Any) -> dict[str, Any]:
    frame = {"type": "message.send", "channel_id": channel_id, "text": text, **fields}
    if key is not None:
        frame["client_message_id"] = key
    return frame


async def answer(client: EventClient, key: str | None, timeout: float = 5.0) -> dict[str, Any]:
    """The message.ack or message.error for ``key`` (other frames skipped)."""

    def answered(frames: list[dict[str, Any]]) -> bool:
        return any(
            f.get("type") in ("message.ack", "message.error") and f.get("client_message_id") == key
            for f in frames
        )

    frames = await client.until(answered, timeout=timeout)
    return next(
        f
        for f in frames
        if f.get("type") in ("message.ack", "message.error") and f.get("client_message_id") == key
    )


async def history(person: Person, channel_id: int) -> list[dict[str, Any]]:
    response = await person.get(f"/api/v1/channels/{channel_id}/messages?limit=200")
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


async def test_a_send_is_acknowledged_stored_and_delivered_to_other_members(org: Org) -> None:
    alice = await org.person("alice")
    bob = await org.person("bob")
    channel = await alice.create_channel(member_ids=[bob.id])
    sender = await EventClient.connect(org.server.ws_url, alice.token)
    listener = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        await sender.send(send_frame(channel["id"], "hello over the socket @" + bob.username, "k1"))
        ack = await answer(sender, "k1")
        assert ack["type"] == "message.ack", ack
        assert ack["created"] is True
        message = ack["message"]
        assert message["text"] == "hello over the socket @" + bob.username
        assert message["channel_id"] == channel["id"]
        assert message["sender_id"] == alice.id
        assert message["client_message_id"] == "k1"
        assert message["mentioned_user_ids"] == [bob.id]
        created = await listener.next_of("message.created")
        assert created["message"] == message
        stored = await history(bob, channel["id"])
        assert [m["id"] for m in stored] == [message["id"]]
        assert stored[0]["seq"] == message["seq"]
    finally:
        await sender.close()
        await listener.close()


async def test_retrying_a_client_message_id_gives_one_message_and_the_same_ack(org: Org) -> None:
    alice = await org.person("alice")
    channel = await alice.create_channel()
    sender = await EventClient.connect(org.server.ws_url, alice.token)
    try:
        # Twice back to back (same batch, most likely), then once more after the ack.
        await sender.send(send_frame(channel["id"], "only once", "retry-me"))
        await sender.send(send_frame(channel["id"], "only once", "retry-me"))
        acks = await sender.until(
            lambda fs: sum(f.get("type") == "message.ack" for f in fs) == 2, timeout=5
        )
        first, second = [f for f in acks if f.get("type") == "message.ack"]
        await sender.send(send_frame(channel["id"], "only once", "retry-me"))
        third = await answer(sender, "retry-me")
        assert third["type"] == "message.ack"
        assert first["message"] == second["message"] == third["message"]
        assert sorted([first["created"], second["created"], third["created"]]) == [
            False,
            False,
            True,
        ]
        stored = await history(alice, channel["id"])
        assert [m["id"] for m in stored] == [first["message"]["id"]]
        # HTTP sees the same key as the same message.
        again = await alice.post(
            f"/api/v1/channels/{channel['id']}/messages",
            {"text": "only once", "client_message_id": "retry-me"},
        )
        assert again.status_code == 200
        assert again.json()["id"] == first["message"]["id"]
    finally:
        await sender.close()


async def test_pipelined_sends_are_stored_in_the_order_sent(org: Org) -> None:
    alice = await org.person("alice")
    bob = await org.person("bob")
    channel = await alice.create_channel(member_ids=[bob.id])
    sender = await EventClient.connect(org.server.ws_url, alice.token)
    listener = await EventClient.connect(org.server.ws_url, bob.token)
    count = 60
    try:
        for n in range(count):
            await sender.send(send_frame(channel["id"], f"message {n}", f"order-{n}"))
        frames = await sender.until(
            lambda fs: sum(f.get("type") == "message.ack" for f in fs) == count, timeout=10
        )
        acks = [f for f in frames if f.get("type") == "message.ack"]
        assert [a["client_message_id"] for a in acks] == [f"order-{n}" for n in range(count)]
        seqs = [a["message"]["seq"] for a in acks]
        assert seqs == sorted(seqs) and len(set(seqs)) == count
        delivered = await listener.until(
            lambda fs: sum(f.get("type") == "message.created" for f in fs) == count, timeout=10
        )
        created = [f for f in delivered if f.get("type") == "message.created"]
        texts = [f["message"]["text"] for f in created]
        assert texts == [f"message {n}" for n in range(count)]
        # The ack carries the message exactly as its event does (encoded once for both), and
        # events written together still arrive one frame each, in stream order.
        assert [f["message"] for f in created] == [a["message"] for a in acks]
        positions = [f["position"] for f in created]
        assert positions == sorted(positions) and len(set(positions)) == count
        assert [m["text"] for m in await history(alice, channel["id"])] == texts
    finally:
        await sender.close()
        await listener.close()


async def test_each_rule_is_answered_with_message_error_and_the_socket_stays_open(
    org: Org,
) -> None:
    alice = await org.person("alice")
    bob = await org.person("bob")
    mine = await alice.create_channel()
    elsewhere = await alice.create_channel()
    bobs_private = await bob.create_channel(private=True)
    bobs_public = await bob.create_channel()
    archived = await alice.create_channel()
    response = await alice.post(f"/api/v1/channels/{archived['id']}/archive")
    assert response.status_code == 200, response.text
    taken = await alice.send(mine["id"], "first", client_message_id="taken")
    sender = await EventClient.connect(org.server.ws_url, alice.token)
    cases: list[tuple[dict[str, Any], str | None, int, str]] = [
        (send_frame(999_999_999, "hi", "e-unknown"), "e-unknown", 404, "not_found"),
        (send_frame(bobs_private["id"], "hi", "e-private"), "e-private", 404, "not_found"),
        (send_frame(bobs_public["id"], "hi", "e-public"), "e-public", 403, "not_a_member"),
        (send_frame(archived["id"], "hi", "e-archived"), "e-archived", 403, "channel_archived"),
        (send_frame(mine["id"], "x" * 16_001, "e-long"), "e-long", 422, "too_long"),
        (send_frame(mine["id"], "   ", "e-empty"), "e-empty", 422, "empty"),
        (send_frame(mine["id"], "hi", None), None, 422, "validation_failed"),
        (
            {"type": "message.send", "text": "hi", "client_message_id": "e-nochannel"},
            "e-nochannel",
            422,
            "validation_failed",
        ),
        (send_frame("abc", "hi", "e-type"), "e-type", 422, "validation_failed"),
        (send_frame(mine["id"], 42, "e-texttype"), "e-texttype", 422, "validation_failed"),
        (
            send_frame(mine["id"], "hi", "bad\u0001key"),
            "bad\u0001key",
            422,
            "invalid_client_message_id",
        ),
        (
            send_frame(mine["id"], "hi", "e-root", thread_root_id=999_999_999),
            "e-root",
            404,
            "thread_root_not_found",
        ),
        (
            send_frame(mine["id"], "hi", "e-file", file_ids=[999_999_999]),
            "e-file",
            404,
            "file_not_found",
        ),
        (send_frame(elsewhere["id"], "first", "taken"), "taken", 409, "client_message_id_reused"),
        (
            send_frame(mine["id"], "hi", "e-extra", colour="red"),
            "e-extra",
            422,
            "validation_failed",
        ),
    ]
    try:
        for frame, key, status, code in cases:
            await sender.send(frame)
            error = await answer(sender, key)
            assert error["type"] == "message.error", (frame, error)
            assert (error["status"], error["code"]) == (status, code), (frame, error)
            assert error["detail"]
            if key is not None and isinstance(frame.get("channel_id"), int):
                # The same body over HTTP is refused with the same status and code.
                body = {k: v for k, v in frame.items() if k not in ("type", "channel_id")}
                over_http = await alice.post(
                    f"/api/v1/channels/{frame['channel_id']}/messages", body
                )
                assert over_http.headers["content-type"].startswith("application/problem+json")
                problem = over_http.json()
                assert (over_http.status_code, problem["code"]) == (status, code), problem
        # Still open, still sending.
        await sender.send(send_frame(mine["id"], "still here", "e-after"))
        ok = await answer(sender, "e-after")
        assert ok["type"] == "message.ack"
        stored = await history(alice, mine["id"])
        assert [m["id"] for m in stored] == [taken["id"], ok["message"]["id"]]
        assert await history(alice, elsewhere["id"]) == []
    finally:
        await sender.close()


async def test_a_read_only_token_cannot_send(org: Org) -> None:
    alice = await org.person("alice")
    channel = await alice.create_channel()
    issued = await alice.post("/api/v1/auth/tokens", {"name": "reader", "scopes": ["read"]})
    assert issued.status_code == 201, issued.text
    reader = await EventClient.connect(org.server.ws_url, issued.json()["secret"])
    try:
        await reader.send(send_frame(channel["id"], "hi", "ro-1"))
        error = await answer(reader, "ro-1")
        assert (error["type"], error["status"], error["code"]) == (
            "message.error",
            403,
            "insufficient_scope",
        )
        assert await history(alice, channel["id"]) == []
    finally:
        await reader.close()


async def test_the_per_user_write_limit_applies_to_socket_sends(
    databases: DatabaseFactory, workdir: Path
) -> None:
    limits = {"exempt": [], "writes_per_second": 0.01, "writes_burst": 3}
    async with org_context(databases, workdir, rate_limits=limits) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()  # one write of the burst
        sender = await EventClient.connect(org.server.ws_url, alice.token)
        try:
            answers = []
            for n in range(4):
                await sender.send(send_frame(channel["id"], f"m{n}", f"rl-{n}"))
                answers.append(await answer(sender, f"rl-{n}"))
            kinds = [a["type"] for a in answers]
            assert kinds == ["message.ack", "message.ack", "message.error", "message.error"]
            assert answers[2]["code"] == "rate_limited" and answers[2]["status"] == 429
            assert answers[2]["retry_after"] >= 1
            # HTTP and the socket share the bucket: HTTP is refused too.
            refused = await alice.post(
                f"/api/v1/channels/{channel['id']}/messages", {"text": "over http"}
            )
            assert refused.status_code == 429
            assert len(await history(alice, channel["id"])) == 2
        finally:
            await sender.close()


async def test_unacknowledged_sends_are_capped_per_connection(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with org_context(databases, workdir, realtime={"max_pending_sends": 2}) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        raw = await RawSocket.open(org.server.ws_url, token=alice.token)
        assert raw.status == 101
        try:
            count = 20
            burst = b"".join(
                masked_frame(
                    0x1, json.dumps(send_frame(channel["id"], f"p{n}", f"cap-{n}")).encode()
                )
                for n in range(count)
            )
            await raw.send(burst)  # one write: the server reads the frames together
            answers: dict[str, dict[str, Any]] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while len(answers) < count:
                _opcode, payload = await raw.read_frame(max(deadline - loop.time(), 0.01))
                frame = json.loads(payload)
                if frame.get("type") in ("message.ack", "message.error"):
                    assert frame["client_message_id"] not in answers
                    answers[frame["client_message_id"]] = frame
            acked = [k for k, f in answers.items() if f["type"] == "message.ack"]
            refused = [f for f in answers.values() if f["type"] == "message.error"]
            assert acked, "the first sends within the cap are stored"
            assert refused, "sends above the cap are refused"
            assert {(f["code"], f["status"]) for f in refused} == {("too_many_pending_sends", 429)}
            stored = await history(alice, channel["id"])
            assert sorted(m["client_message_id"] for m in stored) == sorted(acked)
            # Once answered, the connection may send again.
            again = masked_frame(
                0x1, json.dumps(send_frame(channel["id"], "later", "cap-later")).encode()
            )
            await raw.send(again)
            while True:
                _opcode, payload = await raw.read_frame(5)
                frame = json.loads(payload)
                if frame.get("client_message_id") == "cap-later":
                    assert frame["type"] == "message.ack"
                    break
        finally:
            raw.abort()


async def test_plugins_rewrite_refuse_and_observe_socket_sends(
    databases: DatabaseFactory, workdir: Path
) -> None:
    censor = Censor()
    observer = Observer()
    async with plugin_org(databases, workdir, censor, Gatekeeper(), observer) as org:
        observer.database_url = org.server.settings.database_url()
        alice = await org.person("alice")
        channel = await alice.create_channel()
        sender = await EventClient.connect(org.server.ws_url, alice.token)
        try:
            await sender.send(send_frame(channel["id"], "darn it", "pl-1"))
            ack = await answer(sender, "pl-1")
            assert ack["type"] == "message.ack"
            assert ack["message"]["text"] == "d**n it"
            await sender.send(send_frame(channel["id"], "my password is hunter2", "pl-2"))
            refused = await answer(sender, "pl-2")
            assert (refused["type"], refused["status"], refused["code"]) == (
                "message.error",
                422,
                "rejected_by_policy",
            )
            assert [m["text"] for m in await history(alice, channel["id"])] == ["d**n it"]
            # The after-hook saw the committed message and the channel as the send left it.
            assert [(m.id, committed) for m, committed in observer.stored] == [
                (ack["message"]["id"], "d**n it")
            ]
            assert observer.channels[0].last_seq == ack["message"]["seq"]
            assert observer.actors == [alice.username]
        finally:
            await sender.close()


async def test_thread_replies_and_attachments_over_the_socket(org: Org) -> None:
    alice = await org.person("alice")
    bob = await org.person("bob")
    channel = await alice.create_channel(member_ids=[bob.id])
    root = await alice.send(channel["id"], "root")
    uploaded = await upload_ok(alice, b"notes", "notes.txt")
    sender = await EventClient.connect(org.server.ws_url, alice.token)
    listener = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        await sender.send(
            send_frame(
                channel["id"],
                "a reply with a file",
                "th-1",
                thread_root_id=root["id"],
                file_ids=[uploaded["id"]],
            )
        )
        ack = await answer(sender, "th-1")
        assert ack["type"] == "message.ack", ack
        reply = ack["message"]
        assert reply["thread_root_id"] == root["id"]
        assert [a["id"] for a in reply["attachments"]] == [uploaded["id"]]
        frames = await listener.until(
            lambda fs: any(f.get("type") == "thread.updated" for f in fs), timeout=5
        )
        created = next(f for f in frames if f.get("type") == "message.created")
        assert created["message"] == reply
        updated = next(f for f in frames if f.get("type") == "thread.updated")
        assert updated["root"]["id"] == root["id"] and updated["root"]["reply_count"] == 1
        # The same file cannot be attached twice, over either transport.
        await sender.send(send_frame(channel["id"], "again", "th-2", file_ids=[uploaded["id"]]))
        again = await answer(sender, "th-2")
        assert (again["type"], again["status"], again["code"]) == (
            "message.error",
            409,
            "file_already_attached",
        )
        thread = await alice.get(f"/api/v1/messages/{root['id']}/thread")
        assert [m["id"] for m in thread.json()["replies"]["messages"]] == [reply["id"]]
    finally:
        await sender.close()
        await listener.close()
