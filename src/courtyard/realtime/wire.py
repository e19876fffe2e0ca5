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


class MessageSend(msgspec.Struct, tag="message.send", forbid_unknown_fields=True):
    """Post a message over the socket; answered with message.ack or message.error carrying
    the same ``client_message_id`` (required here: it is how the answer is matched)."""

    channel_id: Id
    text: Annotated[str, msgspec.Meta(max_length=100_000)]
    client_message_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    thread_root_id: Id | None = None
    file_ids: Annotated[list[Id], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class _SendEnvelope(msgspec.Struct):
    """Enough of an unreadable frame to answer it: was it a send, and which one?"""

    type: Any = None
    client_message_id: Any = None


ClientMessage = Auth | Ping | Typing | PresenceSubscribe | Activity | MessageSend

_decoder = msgspec.json.Decoder(ClientMessage)


def decode_client_message(data: bytes | str) -> ClientMessage:
    """Parse one client frame; raises msgspec errors on anything malformed."""
    message: ClientMessage = _decoder.decode(data)
    return message


_envelope_decoder = msgspec.json.Decoder(_SendEnvelope)


def unreadable_send_id(data: bytes | str) -> tuple[bool, str | None]:
    """For a frame :func:`decode_client_message` refused: whether it was a ``message.send``
    and, if it carried a string ``client_message_id``, that key (to address the error)."""
    try:
        envelope = _envelope_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False, None
    if envelope.type != "message.send":
        return False, None
    key = envelope.client_message_id
    return True, key if isinstance(key, str) and len(key) <= 64 else None


_message_encoder = msgspec.json.Encoder()


def ack_frame(
    client_message_id: str,
    message: msgspec.Struct,
    *,
    created: bool,
    message_json: bytes | None = None,
) -> bytes:
    """``message.ack``: the stored message, encoded as in ``message.created`` (``message_json``:
    that encoding, when the caller has it already)."""
    return text_frame(
        b'{"type":"message.ack","client_message_id":'
        + orjson.dumps(client_message_id)
        + (b',"created":true,"message":' if created else b',"created":false,"message":')
        + (message_json if message_json is not None else _message_encoder.encode(message))
        + b"}"
    )
