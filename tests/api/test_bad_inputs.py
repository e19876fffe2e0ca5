"""Bad inputs to the messaging core end in a clean refusal, and nothing is stored.

A clean refusal is a 4xx with ``Content-Type: application/problem+json`` and a body carrying
``type``, ``title``, ``status``, ``code`` and ``detail``; never a 5xx. After every refused write
the affected state (history, channel, channel list, directory) is compared with a snapshot
taken before it. Case numbers refer to ``BAD-INPUTS.md``. Every test runs on whichever
database ``--db`` selects, so running both backends proves the answers are the same on both.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import PASSWORD, DatabaseFactory, Org, Person, org_context, unique

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "code", "detail"}
MAX_ID = 2**63 - 1
JSON = {"content-type": "application/json"}
SMALL_LIMIT = 4096
MIB = 1024 * 1024


# --- helpers ---------------------------------------------------------------------------------


def assert_problem(
    response: httpx.Response, status: int | tuple[int, ...], code: str | None = None
) -> dict[str, Any]:
    """A clean refusal: the status, problem+json, every RFC 9457 member, a stable code."""
    allowed = (status,) if isinstance(status, int) else status
    assert response.status_code in allowed, (response.status_code, response.text)
    media = response.headers.get("content-type", "").split(";", 1)[0].strip()
    assert media == PROBLEM_JSON, (media, response.text)
    body = response.json()
    assert isinstance(body, dict)
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == response.status_code
    assert body["type"] == f"urn:courtyard:problem:{body['code']}"
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


async def channel_state(person: Person, channel_id: int) -> dict[str, Any]:
    """Everything a refused message or channel write could have changed, as a member sees it."""
    summary = await person.get(f"/api/v1/channels/{channel_id}")
    history = await person.get(f"/api/v1/channels/{channel_id}/messages", params={"limit": 200})
    pins = await person.get(f"/api/v1/channels/{channel_id}/pins")
    members = await person.get(f"/api/v1/channels/{channel_id}/members")
    for response in (summary, history, pins, members):
        assert response.status_code == 200, response.text
    return {
        "summary": summary.json(),
        "history": history.json(),
        "pins": pins.json(),
        "members": members.json(),
    }


async def my_channels(person: Person) -> list[dict[str, Any]]:
    """The person's channel list."""
    response = await person.get("/api/v1/channels")
    assert response.status_code == 200, response.text
    return list(response.json()["channels"])


async def whole_directory(person: Person, **params: Any) -> list[dict[str, Any]]:
    """Every user ``person`` may see, following the cursor."""
    found: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = await person.get("/api/v1/users", params={"limit": 200, "cursor": cursor, **params})
        assert page.status_code == 200, page.text
        body = page.json()
        found.extend(body["users"])
        if body["next_cursor"] is None:
            return found
        cursor = body["next_cursor"]


async def all_public_channels(person: Person, **params: Any) -> list[dict[str, Any]]:
    """Every channel the browser lists for ``person``, following the cursor."""
    found: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = await person.get(
            "/api/v1/channels/browse", params={"limit": 200, "cursor": cursor, **params}
        )
        assert page.status_code == 200, page.text
        body = page.json()
        found.extend(body["channels"])
        if body["next_cursor"] is None:
            return found
        cursor = body["next_cursor"]


class Room:
    """Alice, a channel of hers with one message, and shortcuts to post raw bodies."""

    def __init__(self, alice: Person, channel: dict[str, Any], message: dict[str, Any]) -> None:
        self.alice = alice
        self.channel_id: int = channel["id"]
        self.message_id: int = message["id"]
        self.messages = f"/api/v1/channels/{self.channel_id}/messages"

    async def post_raw(
        self, content: bytes, headers: dict[str, str] | None = None, path: str | None = None
    ) -> httpx.Response:
        """POST exactly these bytes (default: to the channel's messages)."""
        return await self.alice.client.post(
            path or self.messages, content=content, headers=headers if headers else JSON
        )

    async def state(self) -> dict[str, Any]:
        """The channel as Alice sees it, plus her channel list."""
        return {
            "channel": await channel_state(self.alice, self.channel_id),
            "mine": await my_channels(self.alice),
        }


@pytest.fixture
async def room(alice: Person) -> Room:
    """A channel with one message from Alice."""
    channel = await alice.create_channel()
    message = await alice.send(channel["id"], "the only message")
    return Room(alice, channel, message)


# --- 1, 15, 18: body size --------------------------------------------------------------------


@pytest.fixture(scope="module")
async def small_org(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[Org]:
    """A server of its own whose request bodies may be at most 4 KiB."""
    async with org_context(
        databases, workdir, server={"max_request_body_bytes": SMALL_LIMIT}
    ) as small:
        yield small


@pytest.fixture
async def small_room(small_org: Org) -> Room:
    """A channel with one message on the 4 KiB server."""
    alice = await small_org.person("alice")
    channel = await alice.create_channel()
    message = await alice.send(channel["id"], "the only message")
    return Room(alice, channel, message)


def message_body_of_size(size: int) -> bytes:
    """A valid send body of exactly ``size`` bytes."""
    frame = b'{"text":""}'
    body = b'{"text":"' + b"a" * (size - len(frame)) + b'"}'
    assert len(body) == size
    json.loads(body)
    return body


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    """Stream ``data`` as an async generator, so httpx sends it chunked with no length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def raw_http(url: str, head: bytes, body_parts: list[bytes]) -> tuple[int, bytes, bytes]:
    """Send a hand-made request, possibly incomplete, and read the response.

    Used to prove that a refusal arrives before the client has sent (and without the
    server waiting for) the rest of the body.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        headers = b""
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
            headers += line
        length = next(
            int(line.split(b":", 1)[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        return int(status_line.split()[1]), headers.lower(), body
    finally:
        writer.close()


def request_head(room: Room, **headers: str) -> bytes:
    """The head of a POST to the room's messages with Alice's token."""
    lines = [
        f"POST {room.messages} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {room.alice.token}",
        "Content-Type: application/json",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk_frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def test_body_of_exactly_the_limit_is_accepted(small_room: Room) -> None:
    response = await small_room.post_raw(message_body_of_size(SMALL_LIMIT))
    assert response.status_code == 201, response.text
    assert len(response.json()["text"]) == SMALL_LIMIT - len('{"text":""}')


async def test_body_one_byte_over_the_limit_gets_413(small_room: Room) -> None:
    before = await small_room.state()
    response = await small_room.post_raw(message_body_of_size(SMALL_LIMIT + 1))
    assert_problem(response, 413, "payload_too_large")
    assert await small_room.state() == before


async def test_chunked_body_of_exactly_the_limit_is_accepted(small_room: Room) -> None:
    response = await small_room.alice.client.post(
        small_room.messages, content=chunks(message_body_of_size(SMALL_LIMIT)), headers=JSON
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 201, response.text


async def test_chunked_body_without_length_over_the_limit_gets_413(small_room: Room) -> None:
    before = await small_room.state()
    response = await small_room.alice.client.post(
        small_room.messages, content=chunks(message_body_of_size(SMALL_LIMIT + 1)), headers=JSON
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")
    assert await small_room.state() == before


async def test_16_mib_body_is_refused_on_its_length_before_any_byte_is_sent(
    small_org: Org, small_room: Room
) -> None:
    before = await small_room.state()
    status, headers, body = await raw_http(
        small_org.server.url, request_head(small_room, content_length=str(16 * MIB)), []
    )
    assert status == 413
    assert b"content-type: application/problem+json" in headers
    assert json.loads(body)["code"] == "payload_too_large"
    assert await small_room.state() == before


async def test_16_mib_chunked_body_is_refused_while_streaming(
    small_org: Org, small_room: Room
) -> None:
    """The server answers after a little over the limit, without waiting for the other 16 MiB."""
    before = await small_room.state()
    first = [chunk_frame(b" " * 1024) for _ in range(SMALL_LIMIT // 1024 + 1)]
    status, _, body = await raw_http(
        small_org.server.url, request_head(small_room, transfer_encoding="chunked"), first
    )
    assert status == 413
    assert json.loads(body)["code"] == "payload_too_large"
    assert await small_room.state() == before


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_16_mib_body_sent_in_full_gets_413_and_the_server_keeps_serving(
    small_org: Org, small_room: Room, framing: str
) -> None:
    before = await small_room.state()
    huge = b'{"text":"' + b"a" * (16 * MIB) + b'"}'
    content: bytes | AsyncIterator[bytes] = (
        huge if framing == "content-length" else chunks(huge, 64 * 1024)
    )
    started = time.monotonic()
    response = await small_room.alice.client.post(
        small_room.messages, content=content, headers=JSON
    )
    assert_problem(response, 413, "payload_too_large")
    assert time.monotonic() - started < 10
    assert await small_room.state() == before
    bob = await small_org.person("bob")
    assert (await bob.get("/api/v1/me")).status_code == 200


async def test_gzip_encoded_body_is_not_inflated(room: Room) -> None:
    """Case 15: a compressed body is refused, never decompressed past the size cap."""
    before = await room.state()
    packed = gzip.compress(b'{"text":"' + b"a" * 100_000 + b'"}')
    response = await room.post_raw(packed, {**JSON, "content-encoding": "gzip"})
    assert_problem(response, 415, "content_encoding_unsupported")
    plain_but_labelled = await room.post_raw(b'{"text":"hi"}', {**JSON, "content-encoding": "gzip"})
    assert_problem(plain_but_labelled, 415, "content_encoding_unsupported")
    assert await room.state() == before


# --- 2, 4, 5: encoding and JSON syntax -------------------------------------------------------

MALFORMED_BODIES = {
    "invalid utf-8 C3 28": (b'{"text":"\xc3\x28"}', "invalid_utf8"),
    "overlong utf-8 C0 AF": (b'{"text":"\xc0\xaf"}', "invalid_utf8"),
    "overlong NUL C0 80": (b'{"text":"a\xc0\x80b"}', "invalid_utf8"),
    "utf-8 encoded surrogate ED A0 80": (b'{"text":"\xed\xa0\x80"}', "invalid_utf8"),
    "beyond U+10FFFF": (b'{"text":"\xf4\x90\x80\x80"}', "invalid_utf8"),
    "latin-1 body": ('{"text":"café"}'.encode("latin-1"), "invalid_utf8"),
    "utf-16 body": ('{"text":"hi"}'.encode("utf-16"), "invalid_utf8"),
    "lone high surrogate escape": (b'{"text":"a\\ud800b"}', "invalid_unicode"),
    "lone low surrogate escape": (b'{"text":"\\udc00"}', "invalid_unicode"),
    "reversed surrogate pair": (b'{"text":"\\ude00\\ud83d"}', "invalid_unicode"),
    "lone surrogate in a key": (b'{"text":"x","\\ud800":1}', "invalid_unicode"),
    "escaped NUL in text": (b'{"text":"a\\u0000b"}', "nul_character"),
    "escaped NUL in a key": (b'{"text":"x","a\\u0000":1}', "nul_character"),
    "raw NUL byte in a string": (b'{"text":"a\x00b"}', "invalid_json"),
    "raw control byte in a string": (b'{"text":"a\x07b"}', "invalid_json"),
    "byte order mark": (b'\xef\xbb\xbf{"text":"x"}', "invalid_json"),
    "NaN": (b'{"text":"x","thread_root_id":NaN}', "invalid_json"),
    "Infinity": (b'{"text":"x","thread_root_id":Infinity}', "invalid_json"),
    "-Infinity": (b'{"text":"x","thread_root_id":-Infinity}', "invalid_json"),
    "integer of 5000 digits": (b'{"text":"x","thread_root_id":' + b"9" * 5000 + b"}", None),
    "duplicate keys": (b'{"text":"a","text":"b"}', "duplicate_key"),
    "duplicate keys spelt differently": (b'{"text":"a","t\\u0065xt":"b"}', "duplicate_key"),
    "duplicate keys in a nested object": (b'{"text":"a","x":{"k":1,"k":2}}', "duplicate_key"),
    "whitespace only": (b"   \n ", "invalid_json"),
    "trailing garbage": (b'{"text":"x"} x', "invalid_json"),
    "two documents": (b'{"text":"a"}{"text":"b"}', "invalid_json"),
    "single quotes": (b"{'text':'x'}", "invalid_json"),
    "trailing comma": (b'{"text":"x",}', "invalid_json"),
    "comment": (b'{"text":"x" /* hi */}', "invalid_json"),
    "truncated": (b'{"text":"x', "invalid_json"),
    "nested 33 levels": (b'{"text":"x","deep":' + b"[" * 33 + b"]" * 33 + b"}", "json_too_deep"),
}


@pytest.mark.parametrize(
    ("body", "code"), list(MALFORMED_BODIES.values()), ids=list(MALFORMED_BODIES)
)
async def test_malformed_json_gets_400_and_stores_nothing(
    room: Room, body: bytes, code: str | None
) -> None:
    before = await room.state()
    problem = assert_problem(await room.post_raw(body), 400, code)
    if code is None:
        assert problem["code"] == "invalid_json"
    assert await room.state() == before


@pytest.mark.parametrize("opener", [b"[", b'{"a":'], ids=["arrays", "objects"])
async def test_json_nested_10000_levels_gets_a_fast_400(room: Room, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    body = opener * 10_000 + (b"" if opener == b"[" else b"1") + closer * 10_000
    before = await room.state()
    started = time.monotonic()
    response = await room.post_raw(body)
    elapsed = time.monotonic() - started
    assert_problem(response, 400, "json_too_deep")
    assert elapsed < 2, elapsed
    assert await room.state() == before
    # The worker survived: the next request is served normally.
    assert (await room.alice.get("/api/v1/me")).status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("channel", b'{"name":"\\ud800"}'),
        ("channel", b'{"name":"a","name":"b"}'),
        ("edit", b'{"text":"\\udfff"}'),
        ("edit", b'{"text":"\xc3\x28"}'),
        ("members", b'{"user_ids":[1],"user_ids":[2]}'),
        ("me", b'{"display_name":"\\ud800"}'),
    ],
    ids=["channel-surrogate", "channel-dupkey", "edit-surrogate", "edit-utf8", "members-dup", "me"],
)
async def test_malformed_json_is_refused_on_every_json_endpoint(
    room: Room, route: str, body: bytes
) -> None:
    paths = {
        "channel": "/api/v1/channels",
        "edit": f"/api/v1/messages/{room.message_id}",
        "members": f"/api/v1/channels/{room.channel_id}/members",
        "me": "/api/v1/me",
    }
    me_before = (await room.alice.get("/api/v1/me")).json()
    before = await room.state()
    method = "PATCH" if route in ("edit", "me") else "POST"
    response = await room.alice.client.request(method, paths[route], content=body, headers=JSON)
    assert_problem(response, 400)
    assert await room.state() == before
    assert (await room.alice.get("/api/v1/me")).json() == me_before


async def test_valid_surrogate_pair_and_non_ascii_are_accepted(room: Room) -> None:
    """The encoding checks refuse only what is broken."""
    response = await room.post_raw(b'{"text":"\\ud83d\\ude00 caf\\u00e9 \xe4\xb8\xad"}')
    assert response.status_code == 201, response.text
    assert response.json()["text"] == "😀 café 中"


# --- 3: NUL everywhere, the same answer on SQLite and PostgreSQL -----------------------------


async def test_nul_in_message_text_and_client_id_is_400(room: Room) -> None:
    before = await room.state()
    for body in (
        {"text": "a\x00b"},
        {"text": "\x00"},
        {"text": "ok", "client_message_id": "k\x00"},
    ):
        assert_problem(await room.alice.post(room.messages, body), 400, "nul_character")
    edit = await room.alice.patch(f"/api/v1/messages/{room.message_id}", {"text": "x\x00"})
    assert_problem(edit, 400, "nul_character")
    assert await room.state() == before


@pytest.mark.parametrize(
    "fields",
    [{"name": "nul\x00name"}, {"topic": "a\x00"}, {"purpose": "\x00"}],
    ids=["name", "topic", "purpose"],
)
async def test_nul_in_channel_fields_is_400(room: Room, fields: dict[str, str]) -> None:
    before = await room.state()
    created = await room.alice.post("/api/v1/channels", {"name": unique("nul"), **fields})
    assert_problem(created, 400, "nul_character")
    changed = await room.alice.patch(f"/api/v1/channels/{room.channel_id}", fields)
    assert_problem(changed, 400, "nul_character")
    assert await room.state() == before


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "nul\x00user"},
        {"display_name": "Nul\x00 Person"},
        {"email": "nul\x00@example.com"},
        {"password": PASSWORD + "\x00"},
    ],
    ids=["username", "display_name", "email", "password"],
)
async def test_nul_in_account_fields_is_400(owner: Person, fields: dict[str, str]) -> None:
    before = await whole_directory(owner, include_deactivated=True)
    body = {"username": unique("nul"), "password": PASSWORD, **fields}
    assert_problem(await owner.post("/api/v1/users", body), 400, "nul_character")
    assert await whole_directory(owner, include_deactivated=True) == before


async def test_nul_in_profile_fields_is_400(alice: Person) -> None:
    before = (await alice.get("/api/v1/me")).json()
    for fields in ({"display_name": "A\x00"}, {"title": "\x00"}, {"timezone": "UTC\x00"}):
        assert_problem(await alice.patch("/api/v1/me", fields), 400, "nul_character")
    status = await alice.put("/api/v1/me/status", {"text": "away\x00"})
    assert_problem(status, 400, "nul_character")
    assert (await alice.get("/api/v1/me")).json() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/users?q=%00",
        "/api/v1/users?q=a%00b",
        "/api/v1/channels/browse?q=%00",
        "/api/v1/channels/browse?q=x&include_archived=%00",
        "/api/v1/channels?x=%00",
        "/api/v1/users?%00=1",
    ],
)
async def test_nul_in_query_string_is_400(alice: Person, url: str) -> None:
    assert_problem(await alice.get(url), 400, "nul_character")


async def test_nul_in_history_cursor_is_400(room: Room) -> None:
    response = await room.alice.get(f"{room.messages}?before=%00")
    assert_problem(response, 400, "nul_character")


async def test_nul_in_a_text_path_segment_is_400(room: Room) -> None:
    before = await room.state()
    for method in ("PUT", "DELETE"):
        response = await room.alice.client.request(
            method, f"/api/v1/messages/{room.message_id}/reactions/%F0%9F%91%8D%00"
        )
        assert_problem(response, 400, "nul_character")
    assert await room.state() == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/channels/1%00", "/api/v1/channels/%00/messages", "/api/v1/messages/1%00/thread"],
)
async def test_nul_in_an_id_path_segment_is_a_clean_refusal(alice: Person, path: str) -> None:
    """Whatever the status, the answer is a problem, never a 5xx."""
    assert_problem(await alice.get(path), (400, 404, 422))


@pytest.mark.parametrize("path", ["/api/v1/channels/1%00", "/api/v1/messages/1%00/thread"])
async def test_nul_in_an_id_path_segment_is_400_like_everywhere_else(
    alice: Person, path: str
) -> None:
    assert_problem(await alice.get(path), 400, "nul_character")


@pytest.mark.parametrize(
    "url",
    ["/api/v1/users?q=%C0%80", "/api/v1/channels/browse?q=%FF%FE", "/api/v1/users?q=%ED%A0%80"],
)
async def test_broken_percent_encoded_utf8_in_query_is_never_a_5xx(alice: Person, url: str) -> None:
    response = await alice.get(url)
    if response.status_code != 200:
        assert_problem(response, (400, 422))


async def test_broken_percent_encoded_utf8_in_path_is_refused(room: Room) -> None:
    before = await room.state()
    for segment in ("%C0%80", "%ED%A0%80", "%FF"):
        response = await room.alice.put(f"/api/v1/messages/{room.message_id}/reactions/{segment}")
        assert_problem(response, (400, 422))
    assert await room.state() == before


# --- 6: type confusion, unknown fields, absurd numbers ---------------------------------------

TYPE_CONFUSION = {
    "operator object as text": ("send", {"text": {"$ne": None}}),
    "array as text": ("send", {"text": ["hi"]}),
    "number as text": ("send", {"text": 5}),
    "null as text": ("send", {"text": None}),
    "bool as text": ("send", {"text": True}),
    "string as thread root": ("send", {"text": "x", "thread_root_id": "1"}),
    "float as thread root": ("send", {"text": "x", "thread_root_id": 1.0}),
    "object as client id": ("send", {"text": "x", "client_message_id": {"$gt": ""}}),
    "operator object in edit": ("edit", {"text": {"$set": "owned"}}),
    "string as read seq": ("read", {"seq": "5"}),
    "float as read seq": ("read", {"seq": 1.0}),
    "bool as read seq": ("read", {"seq": True}),
    "number as muted": ("preferences", {"muted": 1}),
    "string as muted": ("preferences", {"muted": "true"}),
    "array as channel name": ("channel", {"name": ["general"]}),
    "string as private": ("channel", {"name": "x", "private": "false"}),
    "string as member ids": ("channel", {"name": "x", "member_ids": "1"}),
    "strings in member ids": ("channel", {"name": "x", "member_ids": ["1"]}),
    "object as topic": ("topic", {"topic": {"$regex": ".*"}}),
    "string as user ids": ("members", {"user_ids": "1"}),
    "operator objects in user ids": ("members", {"user_ids": [{"$gt": 0}]}),
    "body is an array": ("send", ["text"]),
    "body is a string": ("send", "text"),
    "body is a number": ("send", 1),
    "body is null": ("send", None),
}

UNKNOWN_FIELDS = {
    "send with sender": ("send", {"text": "x", "sender_id": 1}),
    "send with seq": ("send", {"text": "x", "seq": 1}),
    "send with a typo": ("send", {"txt": "x"}),
    "edit with author": ("edit", {"text": "x", "sender_id": 1}),
    "channel with creator": ("channel", {"name": "x", "created_by": 1}),
    "channel with kind": ("channel", {"name": "x", "kind": "direct"}),
    "topic with archived": ("topic", {"topic": "x", "archived_at": None}),
    "preferences for another user": ("preferences", {"muted": True, "user_id": 1}),
    "read with channel": ("read", {"seq": 0, "channel_id": 1}),
}

HUGE_NUMBERS = {
    "10**30 as thread root": ("send", {"text": "x", "thread_root_id": 10**30}),
    "2**63 as thread root": ("send", {"text": "x", "thread_root_id": 2**63}),
    "zero as thread root": ("send", {"text": "x", "thread_root_id": 0}),
    "negative thread root": ("send", {"text": "x", "thread_root_id": -1}),
    "10**30 as read seq": ("read", {"seq": 10**30}),
    "negative read seq": ("read", {"seq": -1}),
    "10**30 in user ids": ("members", {"user_ids": [10**30]}),
    "-(10**30) in member ids": ("channel", {"name": "x", "member_ids": [-(10**30)]}),
    "float overflow": ("read", {"seq": 1e308 * 10}),
}


def route_for(room: Room, route: str) -> tuple[str, str]:
    """Method and path of a JSON endpoint in ``room``."""
    return {
        "send": ("POST", room.messages),
        "edit": ("PATCH", f"/api/v1/messages/{room.message_id}"),
        "read": ("POST", f"/api/v1/channels/{room.channel_id}/read"),
        "preferences": ("PUT", f"/api/v1/channels/{room.channel_id}/preferences"),
        "channel": ("POST", "/api/v1/channels"),
        "topic": ("PATCH", f"/api/v1/channels/{room.channel_id}"),
        "members": ("POST", f"/api/v1/channels/{room.channel_id}/members"),
    }[route]


def encode(body: Any) -> bytes:
    """JSON for a Python value, with Python's inf written as a JSON number that overflows."""
    return json.dumps(body).replace("Infinity", "1e999").encode()


@pytest.mark.parametrize(
    ("route", "body"),
    [*TYPE_CONFUSION.values(), *UNKNOWN_FIELDS.values(), *HUGE_NUMBERS.values()],
    ids=[*TYPE_CONFUSION, *UNKNOWN_FIELDS, *HUGE_NUMBERS],
)
async def test_wrong_types_unknown_fields_and_huge_numbers_get_422(
    room: Room, route: str, body: Any
) -> None:
    before = await room.state()
    method, path = route_for(room, route)
    response = await room.alice.client.request(method, path, content=encode(body), headers=JSON)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"], problem
    assert all(error["source"] == "body" for error in problem["errors"])
    assert await room.state() == before


async def test_integer_of_4000_digits_is_422_not_500(room: Room) -> None:
    """Under Python's digit limit the number parses, and the bound check refuses it."""
    before = await room.state()
    body = b'{"text":"x","thread_root_id":' + b"7" * 4000 + b"}"
    assert_problem(await room.post_raw(body), 422, "validation_failed")
    assert await room.state() == before


async def test_largest_id_is_accepted_in_bodies_and_finds_nothing(room: Room) -> None:
    """2**63-1 fits both databases' integers: a plain 404, not an overflow."""
    before = await room.state()
    response = await room.alice.post(room.messages, {"text": "x", "thread_root_id": MAX_ID})
    assert_problem(response, 404, "thread_root_not_found")
    assert await room.state() == before


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/channels/{10**30}",
        f"/api/v1/channels/{10**30}/messages",
        f"/api/v1/channels/{2**63}/members",
        f"/api/v1/messages/{10**30}",
        f"/api/v1/messages/{2**63}/thread",
        f"/api/v1/users/{10**30}",
        "/api/v1/channels/0",
        "/api/v1/messages/-5",
    ],
)
async def test_out_of_range_ids_in_paths_get_422(alice: Person, path: str) -> None:
    problem = assert_problem(await alice.get(path), 422, "validation_failed")
    assert problem["errors"][0]["source"] == "path"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/api/v1/channels/{10**30}/messages"),
        ("PATCH", f"/api/v1/messages/{10**30}"),
        ("DELETE", f"/api/v1/messages/{2**64}"),
        ("PUT", f"/api/v1/messages/{10**30}/pin"),
        ("POST", f"/api/v1/channels/{10**30}/join"),
    ],
)
async def test_out_of_range_ids_in_paths_of_writes_get_422(
    room: Room, method: str, path: str
) -> None:
    before = await room.state()
    response = await room.alice.client.request(
        method, path, json={"text": "x"} if method in ("POST", "PATCH") else None
    )
    assert_problem(response, 422, "validation_failed")
    assert await room.state() == before


@pytest.mark.parametrize("path", [f"/api/v1/channels/{MAX_ID}", f"/api/v1/messages/{MAX_ID}"])
async def test_largest_id_in_a_path_is_a_plain_404(alice: Person, path: str) -> None:
    assert_problem(await alice.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 10**30},
        {"limit": 0},
        {"limit": -1},
        {"limit": "ten"},
        {"before": 10**30},
        {"after": 2**63},
        {"around": -1},
        {"before": "1; DROP TABLE messages"},
    ],
    ids=lambda q: "-".join(f"{k}={v}" for k, v in q.items())[:40],
)
async def test_bad_history_query_parameters_get_422(room: Room, query: dict[str, Any]) -> None:
    problem = assert_problem(await room.alice.get(room.messages, params=query), 422)
    assert problem["code"] == "validation_failed"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/users?cursor={10**30}",
        "/api/v1/users?cursor=-1",
        f"/api/v1/channels/browse?cursor={10**30}",
        "/api/v1/channels/browse?limit=100000",
        "/api/v1/channels/browse?include_archived=maybe",
        "/api/v1/users?q=" + "x" * 65,
        "/api/v1/channels/browse?q=" + "x" * 81,
    ],
)
async def test_bad_directory_query_parameters_get_422(alice: Person, url: str) -> None:
    assert_problem(await alice.get(url), 422, "validation_failed")


# --- message text rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        (" ", "empty"),
        (" \n\t\r\n ", "empty"),
        ("\u3000\u00a0", "empty"),
        ("bell \x07", "forbidden_character"),
        ("escape \x1b[31mred", "forbidden_character"),
        ("delete \x7f", "forbidden_character"),
        ("c1 \x9b", "forbidden_character"),
    ],
    ids=["empty", "space", "whitespace", "unicode-spaces", "bel", "ansi", "del", "c1"],
)
async def test_empty_or_control_character_messages_get_422(
    room: Room, text: str, code: str
) -> None:
    before = await room.state()
    assert_problem(await room.alice.post(room.messages, {"text": text}), 422, code)
    edit = await room.alice.patch(f"/api/v1/messages/{room.message_id}", {"text": text})
    assert_problem(edit, 422, code)
    assert await room.state() == before


async def test_message_of_max_message_chars_is_accepted_and_one_more_is_422(room: Room) -> None:
    limit = 16_000  # the default messaging.max_message_chars
    before = await room.state()
    too_long = await room.alice.post(room.messages, {"text": "x" * (limit + 1)})
    assert_problem(too_long, 422, "too_long")
    edit = await room.alice.patch(f"/api/v1/messages/{room.message_id}", {"text": "y" * 16_001})
    assert_problem(edit, 422, "too_long")
    assert await room.state() == before
    # Characters, not bytes: the limit in four-byte emoji is accepted too.
    exact = await room.alice.post(room.messages, {"text": "😀" * limit})
    assert exact.status_code == 201, exact.text
    assert exact.json()["seq"] == before["channel"]["summary"]["channel"]["last_seq"] + 1


async def test_message_over_the_schema_bound_gets_422(room: Room) -> None:
    before = await room.state()
    response = await room.alice.post(room.messages, {"text": "x" * 100_001})
    assert_problem(response, 422, "validation_failed")
    assert await room.state() == before


async def test_refused_sends_do_not_consume_sequence_numbers(room: Room) -> None:
    last = (await room.state())["channel"]["summary"]["channel"]["last_seq"]
    await room.alice.post(room.messages, {"text": ""})
    await room.post_raw(b'{"text":"\\ud800"}')
    await room.alice.post(room.messages, {"text": "x", "thread_root_id": MAX_ID})
    sent = await room.alice.send(room.channel_id, "after the refusals")
    assert sent["seq"] == last + 1


# --- names: control and bidi characters ------------------------------------------------------

BAD_NAME_CHARACTERS = {
    "bel": "\x07",
    "escape": "\x1b",
    "newline": "\n",
    "rtl-override": "\u202e",
    "ltr-isolate": "\u2066",
    "zero-width-space": "\u200b",
    "bom": "\ufeff",
    "soft-hyphen": "\u00ad",
    "private-use": "\ue000",
}


@pytest.mark.parametrize("char", list(BAD_NAME_CHARACTERS.values()), ids=list(BAD_NAME_CHARACTERS))
async def test_control_and_bidi_characters_in_channel_names_get_422(room: Room, char: str) -> None:
    before = await room.state()
    name = f"pay{char}lpal"
    created = await room.alice.post("/api/v1/channels", {"name": name})
    assert_problem(created, 422, "forbidden_character")
    for fields in ({"name": name}, {"topic": f"t{char}x"}, {"purpose": f"p{char}x"}):
        changed = await room.alice.patch(f"/api/v1/channels/{room.channel_id}", fields)
        assert_problem(changed, 422, "forbidden_character")
    topic = await room.alice.post("/api/v1/channels", {"name": unique("ok"), "topic": f"a{char}b"})
    assert_problem(topic, 422)
    assert await room.state() == before


@pytest.mark.parametrize("char", ["\x07", "\u202e", "\u200b", "\u2067"])
async def test_control_and_bidi_characters_in_people_names_get_422(
    owner: Person, alice: Person, char: str
) -> None:
    directory = await whole_directory(owner, include_deactivated=True)
    me = (await alice.get("/api/v1/me")).json()
    for fields in ({"display_name": f"Ali{char}ce"}, {"title": f"CEO{char}"}):
        assert_problem(await alice.patch("/api/v1/me", fields), 422, "forbidden_character")
        by_admin = await owner.patch(f"/api/v1/users/{alice.id}", fields)
        assert_problem(by_admin, 422, "forbidden_character")
    new_user = {"username": unique("bidi"), "password": PASSWORD, "display_name": f"x{char}y"}
    assert_problem(await owner.post("/api/v1/users", new_user), 422, "forbidden_character")
    bad_username = {"username": f"ad{char}min", "password": PASSWORD}
    assert_problem(await owner.post("/api/v1/users", bad_username), 422, "invalid_username")
    bot = await owner.post("/api/v1/bots", {"username": unique("bot"), "display_name": f"b{char}"})
    assert_problem(bot, 422, "forbidden_character")
    assert (await alice.get("/api/v1/me")).json() == me
    assert await whole_directory(owner, include_deactivated=True) == directory


# --- 25: SQL metacharacters in searches ------------------------------------------------------

SQL_QUERIES = ["' OR 1=1 --", "%", "_", "\\", "%%", "\\%", "%' OR '1'='1", "'; --", '"', "*"]


def user_matches(user: dict[str, Any], query: str) -> bool:
    """What the directory search promises: a case-insensitive substring of either name."""
    needle = query.lower()
    return needle in user["username"] or needle in user["display_name"].lower()


@pytest.fixture
async def sql_people(org: Org, owner: Person) -> str:
    """People whose display names hold SQL metacharacters, and look-alikes without them."""
    tag = unique("sq")
    for display_name in (
        f"{tag} 100% Real",
        f"{tag} 100x Real",
        f"{tag} snake_case",
        f"{tag} snakeXcase",
        f"{tag} back\\slash",
        f"{tag} backslash",
        f"{tag} O'Brien' OR 1=1 --",
    ):
        await org.person("sq", display_name=display_name)
    return tag


@pytest.mark.parametrize("query", SQL_QUERIES)
async def test_sql_metacharacters_in_user_search_match_only_literally(
    alice: Person, sql_people: str, query: str
) -> None:
    everyone = await whole_directory(alice)
    found = await whole_directory(alice, q=query)
    expected = [u["id"] for u in everyone if user_matches(u, query)]
    assert [u["id"] for u in found] == expected


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (" 100%", " 100% real"),
        (" snake_", " snake_case"),
        (" back\\", " back\\slash"),
        (" o'brien' or 1=1 --", " o'brien' or 1=1 --"),
    ],
)
async def test_user_search_with_wildcards_finds_exactly_the_literal_match(
    alice: Person, sql_people: str, suffix: str, expected: str
) -> None:
    found = await whole_directory(alice, q=sql_people + suffix)
    assert [u["display_name"].lower() for u in found] == [sql_people + expected]


@pytest.fixture
async def sql_channels(alice: Person) -> str:
    """Public channels whose names hold SQL metacharacters, and look-alikes without them."""
    tag = unique("sq")
    for name in (
        f"{tag} 100% sure",
        f"{tag} 100x sure",
        f"{tag} snake_case",
        f"{tag} snakeXcase",
        f"{tag} back\\slash",
        f"{tag} backslash",
        f"{tag} o'brien' OR 1=1 --",
    ):
        await alice.create_channel(name)
    return tag


@pytest.mark.parametrize("query", SQL_QUERIES)
async def test_sql_metacharacters_in_channel_browse_match_only_literally(
    bob: Person, sql_channels: str, query: str
) -> None:
    everything = await all_public_channels(bob)
    found = await all_public_channels(bob, q=query)
    expected = [c["id"] for c in everything if query.casefold() in c["name"].casefold()]
    assert [c["id"] for c in found] == expected


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (" 100%", " 100% sure"),
        (" snake_", " snake_case"),
        (" back\\", " back\\slash"),
        ("' OR 1=1 --", None),
        (" o'brien' or 1=1 --", " o'brien' OR 1=1 --"),
    ],
)
async def test_channel_browse_with_wildcards_finds_exactly_the_literal_match(
    bob: Person, sql_channels: str, suffix: str, expected: str | None
) -> None:
    found = await all_public_channels(bob, q=sql_channels + suffix)
    assert [c["name"] for c in found] == ([] if expected is None else [sql_channels + expected])


async def test_admin_browse_including_private_channels_still_filters_by_query(
    admin: Person, sql_channels: str
) -> None:
    everything = await all_public_channels(admin, include_private=True)
    found = await all_public_channels(admin, q="%", include_private=True)
    assert [c["id"] for c in found] == [c["id"] for c in everything if "%" in c["name"]]


# --- content types and missing bodies --------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"text":"x"}'),
        ("text/plain;charset=utf-8", b'{"text":"x"}'),
        ("application/x-www-form-urlencoded", b"text=x"),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="text"\r\n\r\nx\r\n--zz--\r\n',
        ),
        ("application/xml", b"<text>x</text>"),
        ("application/jsonp", b'{"text":"x"}'),
        ("text/json", b'{"text":"x"}'),
        ("", b'{"text":"x"}'),
    ],
    ids=["text", "text-charset", "form", "multipart", "xml", "jsonp", "text-json", "none"],
)
async def test_non_json_content_type_gets_415(room: Room, content_type: str, body: bytes) -> None:
    before = await room.state()
    headers = {"content-type": content_type} if content_type else {}
    request = room.alice.client.build_request("POST", room.messages, content=body, headers=headers)
    assert request.headers.get("content-type") == (content_type or None)
    response = await room.alice.client.send(request)
    assert_problem(response, 415, "json_required")
    assert await room.state() == before


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/problem+json",
    ],
)
async def test_json_content_types_are_accepted(room: Room, content_type: str) -> None:
    response = await room.post_raw(b'{"text":"typed"}', {"content-type": content_type})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "route"),
    [("POST", "send"), ("PATCH", "edit"), ("POST", "channel"), ("POST", "members")],
)
async def test_missing_body_is_a_clean_422(room: Room, method: str, route: str) -> None:
    before = await room.state()
    _, path = route_for(room, route)
    for headers in ({}, JSON, {**JSON, "content-length": "0"}):
        response = await room.alice.client.request(method, path, headers=headers)
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"] == [
            {"field": "data", "source": "body", "message": "a JSON request body is required"}
        ]
    assert await room.state() == before


# --- 39: cross-site requests with a cookie session -------------------------------------------


class CookieSession:
    """A browser-like client: session cookie set by sign-in, CSRF token from the response."""

    def __init__(self, client: httpx.AsyncClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf


async def cookie_session(org: Org, person: Person) -> CookieSession:
    """Sign ``person`` in again with a cookie session."""
    client = org.anonymous()
    response = await client.post(
        "/api/v1/auth/sign-in",
        json={"login": person.username, "password": PASSWORD, "session_type": "cookie"},
    )
    assert response.status_code == 200, response.text
    assert "courtyard_session" in client.cookies
    assert response.json()["token"] is None
    return CookieSession(client, response.json()["csrf_token"])


def cookie_writes(room: Room, bob_id: int) -> list[tuple[str, str, Any]]:
    """State-changing requests a forged page might try."""
    message = f"/api/v1/messages/{room.message_id}"
    channel = f"/api/v1/channels/{room.channel_id}"
    return [
        ("POST", room.messages, {"text": "forged"}),
        ("PATCH", message, {"text": "forged"}),
        ("DELETE", message, None),
        ("PUT", f"{message}/reactions/%F0%9F%91%8D", None),
        ("PUT", f"{message}/pin", None),
        ("PATCH", channel, {"topic": "forged"}),
        ("POST", f"{channel}/members", {"user_ids": [bob_id]}),
        ("PUT", f"{channel}/preferences", {"muted": True}),
        ("POST", f"{channel}/read", {"seq": 0}),
        ("POST", f"{channel}/archive", None),
        ("POST", f"{channel}/leave", None),
        ("POST", "/api/v1/channels", {"name": unique("forged")}),
        ("PATCH", "/api/v1/me", {"display_name": "Forged"}),
        ("POST", "/api/v1/auth/sign-out", None),
    ]


async def test_cookie_writes_without_csrf_header_get_403_and_store_nothing(
    org: Org, room: Room, bob: Person
) -> None:
    browser = await cookie_session(org, room.alice)
    me = (await room.alice.get("/api/v1/me")).json()
    before = await room.state()
    for method, path, body in cookie_writes(room, bob.id):
        response = await browser.client.request(method, path, json=body)
        assert_problem(response, 403, "csrf_failed")
        wrong = await browser.client.request(
            method, path, json=body, headers={"x-csrf-token": "0" * 43}
        )
        assert_problem(wrong, 403, "csrf_failed")
    assert await room.state() == before
    assert (await room.alice.get("/api/v1/me")).json() == me
    # The session itself still works, for reads and for writes that carry the token.
    assert (await browser.client.get("/api/v1/me")).status_code == 200
    ok = await browser.client.post(
        room.messages, json={"text": "real"}, headers={"x-csrf-token": browser.csrf}
    )
    assert ok.status_code == 201, ok.text


async def test_another_sessions_csrf_token_is_refused(org: Org, room: Room) -> None:
    first = await cookie_session(org, room.alice)
    second = await cookie_session(org, room.alice)
    assert first.csrf != second.csrf
    before = await room.state()
    response = await first.client.post(
        room.messages, json={"text": "x"}, headers={"x-csrf-token": second.csrf}
    )
    assert_problem(response, 403, "csrf_failed")
    assert await room.state() == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"text=forged"),
        ("text/plain", b'{"text":"forged"}'),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="text"\r\n\r\nforged\r\n--zz--\r\n',
        ),
    ],
    ids=["form", "text-plain", "multipart"],
)
async def test_cross_site_form_post_with_the_cookie_is_refused(
    org: Org, room: Room, content_type: str, body: bytes
) -> None:
    """What an HTML form on another site can send: a simple content type, no custom header."""
    browser = await cookie_session(org, room.alice)
    before = await room.state()
    forged = {"content-type": content_type, "origin": "https://evil.example"}
    for path in (room.messages, "/api/v1/channels", f"/api/v1/channels/{room.channel_id}/leave"):
        response = await browser.client.post(path, content=body, headers=forged)
        assert_problem(response, (403, 415))
    # Even if the token leaked, a form-encoded body is still not JSON.
    leaked = await browser.client.post(
        room.messages, content=body, headers={**forged, "x-csrf-token": browser.csrf}
    )
    assert_problem(leaked, 415, "json_required")
    assert await room.state() == before


# --- refusals outside any route --------------------------------------------------------------


async def test_unknown_api_path_is_a_problem(alice: Person) -> None:
    assert_problem(await alice.get("/api/v1/no-such-endpoint"), 404, "not_found")


async def test_router_refusals_carry_the_security_headers(alice: Person) -> None:
    for response in (
        await alice.get("/api/v1/channels/not-a-number"),
        await alice.client.request("PURGE", "/api/v1/channels"),
    ):
        assert_problem(response, (404, 405))
        assert response.headers.get("x-content-type-options") == "nosniff"
        assert response.headers.get("x-request-id")


async def test_unsupported_method_is_a_clean_405(alice: Person) -> None:
    response = await alice.client.request("PURGE", "/api/v1/channels")
    assert_problem(response, 405, "method_not_allowed")
