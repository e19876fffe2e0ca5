"""Server-to-client WebSocket frames (RFC 6455), encoded once and written to many sockets.

The hot path of fan-out is "one event, N sockets": the frame bytes are built here once per
event and the same ``bytes`` object is handed to every recipient's transport. Server frames are
never masked and never compressed (permessage-deflate is not negotiated on the event socket).
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9

PING_FRAME = bytes([0x80 | OP_PING, 0])


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame carrying ``payload`` (UTF-8 JSON)."""
    length = len(payload)
    if length < 126:
        return bytes((0x80 | OP_TEXT, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", 0x80 | OP_TEXT, 126, length) + payload
    return struct.pack("!BBQ", 0x80 | OP_TEXT, 127, length) + payload


OP_PONG = 0xA


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and a short UTF-8 reason (at most 123 bytes)."""
    payload = struct.pack("!H", code) + reason.encode("utf-8")[:123]
    return bytes((0x80 | OP_CLOSE, len(payload))) + payload


def pong_frame(payload: bytes) -> bytes:
    """The answer to a ping, echoing its payload (at most 125 bytes)."""
    return bytes((0x80 | OP_PONG, len(payload))) + payload[:125]
