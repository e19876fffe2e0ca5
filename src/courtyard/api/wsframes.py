"""Reading client frames of the event socket (RFC 6455 section 5), with no per-socket state
beyond a buffer that exists only while a frame is incomplete.

The handshake is :mod:`courtyard.api.wshandshake`'s; once upgraded, a socket needs only this
small reader. It keeps an idle socket's memory low (the ``websockets`` library's protocol
object held a parser generator, a stream reader and a dozen fields per socket) and refuses
oversized frames from their header, before reading the payload.
"""

from __future__ import annotations

import struct

from courtyard.realtime import closecodes

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_KNOWN = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})


class FrameError(Exception):
    """The client broke the protocol; close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR the payload with the repeating 4-byte mask (done on big integers, in C)."""
    length = len(payload)
    if not length:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return value.to_bytes(length, "big")


def read_frames(buffer: bytearray, max_payload: int) -> tuple[list[tuple[int, bool, bytes]], int]:
    """Complete frames at the start of ``buffer`` as (opcode, fin, payload); returns them and
    how many bytes they used. Raises FrameError for anything RFC 6455 forbids a client."""
    frames: list[tuple[int, bool, bytes]] = []
    offset = 0
    size = len(buffer)
    while size - offset >= 2:
        first, second = buffer[offset], buffer[offset + 1]
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        if first & 0x70:
            raise FrameError(
                closecodes.PROTOCOL_ERROR, "reserved bits set (no extension was agreed)"
            )
        if not second & 0x80:
            raise FrameError(closecodes.PROTOCOL_ERROR, "client frames must be masked")
        if opcode not in _KNOWN:
            raise FrameError(closecodes.PROTOCOL_ERROR, f"unknown opcode {opcode}")
        length = second & 0x7F
        header = 2
        if length == 126:
            if size - offset < 4:
                break
            (length,) = struct.unpack_from("!H", buffer, offset + 2)
            header = 4
        elif length == 127:
            if size - offset < 10:
                break
            (length,) = struct.unpack_from("!Q", buffer, offset + 2)
            header = 10
        if opcode >= OP_CLOSE and (length > 125 or not fin):
            raise FrameError(closecodes.PROTOCOL_ERROR, "control frames are short and unfragmented")
        if length > max_payload:
            raise FrameError(closecodes.MESSAGE_TOO_BIG, "message too big")
        end = offset + header + 4 + length
        if end > size:
            break
        mask = bytes(buffer[offset + header : offset + header + 4])
        payload = unmask(bytes(buffer[offset + header + 4 : end]), mask)
        frames.append((opcode, fin, payload))
        offset = end
    return frames, offset
