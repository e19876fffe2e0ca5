"""Hostile or broken clients on the event socket: refused cleanly, no events leak."""

from __future__ import annotations

import asyncio
import json

from courtyard.realtime import closecodes
from tests.realtime.client import EventClient
from tests.realtime.raw import RawSocket, masked_frame
from tests.support import Org, Person

TEXT, BINARY, CONT = 0x1, 0x2, 0x0


async def _authenticated_raw(org: Org, person: Person, **kwargs: object) -> RawSocket:
    raw = await RawSocket.open(org.server.ws_url, token=person.token, **kwargs)  # type: ignore[arg-type]
    assert raw.status == 101
    for _ in range(2):  # hello, caught_up
        opcode, payload = await raw.read_frame()
        assert opcode == TEXT
    return raw


async def test_foreign_origin_is_refused_at_the_handshake(org: Org, bob: Person) -> None:
    raw = await RawSocket.open(org.server.ws_url, token=bob.token, origin="https://evil.example")
    assert raw.status == 403
    raw.abort()


async def test_own_origin_is_accepted(org: Org, bob: Person) -> None:
    raw = await RawSocket.open(
        org.server.ws_url, token=bob.token, origin=org.server.settings.server.public_url()
    )
    assert raw.status == 101
    raw.abort()


async def test_cookie_session_needs_an_origin(org: Org, bob: Person) -> None:
    raw = await RawSocket.open(
        org.server.ws_url, extra_headers={"Cookie": f"courtyard_session={bob.token}"}
    )
    assert raw.status == 403
    raw.abort()


async def test_invalid_token_is_refused_before_upgrade(org: Org) -> None:
    raw = await RawSocket.open(org.server.ws_url, token="cys_not-a-real-token")
    assert raw.status == 401
    raw.abort()


async def test_unknown_path_and_bad_since_are_refused(org: Org, bob: Person) -> None:
    other = await RawSocket.open(
        org.server.ws_url.replace("/api/v1/events", "/api/v1/nope"), token=bob.token
    )
    assert other.status == 404
    other.abort()
    bad = await RawSocket.open(org.server.ws_url + "?since=-3", token=bob.token)
    assert bad.status == 400
    bad.abort()


async def test_first_frame_authentication(org: Org, bob: Person) -> None:
    raw = await RawSocket.open(org.server.ws_url)
    assert raw.status == 101
    await raw.send(masked_frame(TEXT, json.dumps({"type": "auth", "token": bob.token}).encode()))
    opcode, payload = await raw.read_frame()
    assert json.loads(payload)["type"] == "hello"
    raw.abort()


async def test_first_frame_with_a_bad_token_closes_4001(org: Org) -> None:
    raw = await RawSocket.open(org.server.ws_url)
    await raw.send(masked_frame(TEXT, json.dumps({"type": "auth", "token": "cys_bogus"}).encode()))
    assert await raw.close_code() == closecodes.UNAUTHENTICATED


async def test_messages_before_authentication_get_errors_not_events(org: Org) -> None:
    raw = await RawSocket.open(org.server.ws_url)
    await raw.send(masked_frame(TEXT, b'{"type":"ping"}'))
    opcode, payload = await raw.read_frame()
    assert json.loads(payload) == {
        "type": "error",
        "code": "unauthenticated",
        "detail": "send an auth message first",
    }
    raw.abort()


async def test_malformed_frames_get_error_events(org: Org, bob: Person) -> None:
    raw = await _authenticated_raw(org, bob)
    for bad in (b"{not json", b'{"type":"nope"}', b'{"type":"typing","channel_id":"x"}', b"[]"):
        await raw.send(masked_frame(TEXT, bad))
        opcode, payload = await raw.read_frame()
        assert json.loads(payload)["type"] == "error"
    await raw.send(masked_frame(TEXT, b'{"type":"ping"}'))
    opcode, payload = await raw.read_frame()
    assert json.loads(payload)["type"] == "pong"
    raw.abort()


async def test_binary_frames_close_1003(org: Org, bob: Person) -> None:
    raw = await _authenticated_raw(org, bob)
    await raw.send(masked_frame(BINARY, b"\x00\x01"))
    assert await raw.close_code() == closecodes.UNSUPPORTED_DATA


async def test_invalid_utf8_closes_1007(org: Org, bob: Person) -> None:
    raw = await _authenticated_raw(org, bob)
    await raw.send(masked_frame(TEXT, b"\xc3\x28"))
    assert await raw.close_code() == closecodes.INVALID_PAYLOAD


async def test_oversized_frame_closes_1009(org: Org, bob: Person) -> None:
    raw = await _authenticated_raw(org, bob)
    await raw.send(masked_frame(TEXT, b"x" * (org.server.settings.realtime.max_frame_bytes + 1)))
    assert await raw.close_code() == closecodes.MESSAGE_TOO_BIG


async def test_endless_fragmentation_closes_1009(org: Org, bob: Person) -> None:
    raw = await _authenticated_raw(org, bob)
    await raw.send(masked_frame(TEXT, b"x" * 1000, fin=False))
    for _ in range(200):
        await raw.send(masked_frame(CONT, b"x" * 1000, fin=False))
    assert await raw.close_code() == closecodes.MESSAGE_TOO_BIG


async def test_frame_flood_is_throttled_then_closed_1008(org: Org, bob: Person) -> None:
    raw = await _authenticated_raw(org, bob)
    ping = masked_frame(TEXT, b'{"type":"ping"}')
    await raw.send(ping * 2000)
    assert await raw.close_code(timeout=15) == closecodes.POLICY_VIOLATION


async def test_deactivation_closes_the_users_sockets_4003(org: Org, owner: Person) -> None:
    victim = await org.person("leaver")
    client = await EventClient.connect(org.server.ws_url, victim.token)
    response = await owner.post(f"/api/v1/users/{victim.id}/deactivate")
    assert response.status_code == 200
    assert await client.closed_with() == closecodes.FORBIDDEN
    again = await RawSocket.open(org.server.ws_url, token=victim.token)
    assert again.status == 401
    again.abort()


async def test_typing_reaches_other_members_only(
    org: Org, alice: Person, bob: Person, carol: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    watcher = await EventClient.connect(org.server.ws_url, bob.token)
    typer = await EventClient.connect(org.server.ws_url, alice.token)
    outsider = await EventClient.connect(org.server.ws_url, carol.token)
    try:
        await typer.send({"type": "typing", "channel_id": channel["id"]})
        typing = await watcher.next_of("typing")
        assert typing["user_id"] == alice.id
        assert typing["channel_id"] == channel["id"]
        assert typing["expires_in_ms"] > 0
        assert await typer.quiet(0.3) == []
        assert await outsider.quiet(0.1) == []
        await outsider.send({"type": "typing", "channel_id": channel["id"]})
        error = await outsider.next_of("error")
        assert error["code"] == "not_found"
        assert await watcher.quiet(0.3) == []
    finally:
        for client in (watcher, typer, outsider):
            await client.close()


async def test_presence_follows_connections(org: Org, alice: Person, bob: Person) -> None:
    watcher = await EventClient.connect(org.server.ws_url, bob.token)
    try:
        await watcher.send({"type": "presence.subscribe", "user_ids": [alice.id]})
        initial = await watcher.next_of("presence")
        assert initial == {"type": "presence", "user_id": alice.id, "status": "offline"}
        alice_socket = await EventClient.connect(org.server.ws_url, alice.token)
        online = await watcher.next_of("presence")
        assert online["status"] == "online"
        await alice_socket.send({"type": "activity", "state": "idle"})
        away = await watcher.next_of("presence")
        assert away["status"] == "away"
        rest = await bob.get("/api/v1/presence", params={"ids": [alice.id]})
        assert rest.json()["presence"] == [{"user_id": alice.id, "status": "away"}]
        await alice_socket.close()
        await asyncio.sleep(0)
    finally:
        await watcher.close()


async def test_signing_out_closes_that_sessions_socket_4004(org: Org) -> None:
    person = await org.person("leaving")
    second = await org.sign_in(person.username)
    doomed = await EventClient.connect(org.server.ws_url, person.token)
    survivor = await EventClient.connect(org.server.ws_url, second.token)
    try:
        assert (await person.post("/api/v1/auth/sign-out")).status_code == 204
        assert await doomed.closed_with() == closecodes.SESSION_ENDED
        notice = await survivor.next_of("sessions.ended")
        assert notice["user_id"] == person.id
        assert len(notice["session_ids"]) == 1
        assert await survivor.quiet(0.3) == [], "the other session's socket stays open"
        await second.post(
            "/api/v1/auth/password",
            {
                "current_password": "correct horse battery staple",
                "new_password": "another long passphrase",
            },
        )
        assert await survivor.quiet(0.3) == [], "the session that changed the password stays"
    finally:
        await survivor.close()


async def test_password_change_closes_the_other_sessions_sockets(org: Org) -> None:
    person = await org.person("changer")
    other = await org.sign_in(person.username)
    other_socket = await EventClient.connect(org.server.ws_url, other.token)
    changed = await person.post(
        "/api/v1/auth/password",
        {
            "current_password": "correct horse battery staple",
            "new_password": "a brand new passphrase",
        },
    )
    assert changed.status_code == 204
    assert await other_socket.closed_with() == closecodes.SESSION_ENDED


async def test_revoking_a_token_closes_its_socket(org: Org, alice: Person) -> None:
    issued = await alice.post("/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]})
    token = issued.json()
    client = await EventClient.connect(org.server.ws_url, token["secret"])
    assert (await alice.delete(f"/api/v1/auth/tokens/{token['token']['id']}")).status_code == 204
    assert await client.closed_with() == closecodes.SESSION_ENDED
