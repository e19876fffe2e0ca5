"""The JSON messages of the event socket, both directions.

Server -> client: durable events are ``{"position": N, "type": "...", ...}`` — the stored event
JSON with its position spliced in, so nothing is re-encoded per recipient. Control messages
(hello, caught_up, resync_required, error, pong) and ephemeral ones (typing, presence) have a
``type`` and no position.

Client -> server: small JSON objects with a ``type``; see :data:`ClientMessage`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson

from courtyard.realtime.frames import text_frame

MAX_ID = 2**63 - 1
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


def event_frame(position: int, payload: bytes) -> bytes:
    """The frame for a durable event whose stored JSON is ``payload``."""
    return text_frame(b'{"position":' + str(position).encode() + b"," + payload[1:])


def control_frame(message: dict[str, Any]) -> bytes:
    """A frame for a control or ephemeral message."""
    return text_frame(orjson.dumps(message))


class Auth(msgspec.Struct, tag="auth", forbid_unknown_fields=True):
    """First frame for clients that cannot send an Authorization header."""

    token: Annotated[str, msgspec.Meta(max_length=256)]


class Ping(msgspec.Struct, tag="ping", forbid_unknown_fields=True):
    """Application-level ping (browsers cannot send WebSocket pings); answered with pong."""


class Typing(msgspec.Struct, tag="typing", forbid_unknown_fields=True):
    """The user is typing in a channel (or a thread of it)."""

    channel_id: Id
    thread_root_id: Id | None = None


class PresenceSubscribe(msgspec.Struct, tag="presence.subscribe", forbid_unknown_fields=True):
    """Replace the set of users whose presence this connection wants (at most 500)."""

    user_ids: Annotated[list[Id], msgspec.Meta(max_length=500)]


class Activity(msgspec.Struct, tag="activity", forbid_unknown_fields=True):
    """The client's own activity hint: "active" (focused, typing) or "idle"."""

    state: Annotated[str, msgspec.Meta(pattern="^(active|idle)$")]


ClientMessage = Auth | Ping | Typing | PresenceSubscribe | Activity

_decoder = msgspec.json.Decoder(ClientMessage)


def decode_client_message(data: bytes | str) -> ClientMessage:
    """Parse one client frame; raises msgspec errors on anything malformed."""
    message: ClientMessage = _decoder.decode(data)
    return message
