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
