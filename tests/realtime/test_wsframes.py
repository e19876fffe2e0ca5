"""Client frame reading: every protocol violation is refused with the right close code."""

from __future__ import annotations

import struct

import pytest

from courtyard.api.wsframes import FrameError, read_frames, unmask
from courtyard.realtime import closecodes
from tests.realtime.raw import masked_frame


def test_reads_whole_frames_and_leaves_a_partial_one() -> None:
    first = masked_frame(0x1, b'{"type":"ping"}')
    second = masked_frame(0x1, "数据".encode())
    buffer = bytearray(first + second[:5])
    frames, used = read_frames(buffer, 65536)
    assert frames == [(0x1, True, b'{"type":"ping"}')]
    assert used == len(first)
    frames, used = read_frames(bytearray(second), 65536)
    assert frames == [(0x1, True, "数据".encode())]


def test_medium_and_large_length_encodings() -> None:
    for size in (125, 126, 65535, 65536, 70000):
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        frames, _ = read_frames(bytearray(masked_frame(0x1, payload)), 1 << 20)
        assert frames[0][2] == payload


def test_unmask_round_trips() -> None:
    assert unmask(unmask(b"hello world", b"abcd"), b"abcd") == b"hello world"
    assert unmask(b"", b"abcd") == b""


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (bytes((0x81, 0x05)) + b"hello", closecodes.PROTOCOL_ERROR),  # not masked
        (bytes((0xC1, 0x80)) + b"\0\0\0\0", closecodes.PROTOCOL_ERROR),  # RSV1 set
        (bytes((0x83, 0x80)) + b"\0\0\0\0", closecodes.PROTOCOL_ERROR),  # opcode 3
        (bytes((0x09, 0x80)) + b"\0\0\0\0", closecodes.PROTOCOL_ERROR),  # fragmented ping
        (bytes((0x89, 0xFE)) + struct.pack("!H", 200) + b"\0" * 204, closecodes.PROTOCOL_ERROR),
        # A 100 MB frame is refused from its header alone, before any payload arrives.
        (bytes((0x81, 0xFF)) + struct.pack("!Q", 100 * 1024 * 1024), closecodes.MESSAGE_TOO_BIG),
    ],
)
def test_protocol_violations_are_refused(raw: bytes, code: int) -> None:
    with pytest.raises(FrameError) as refused:
        read_frames(bytearray(raw), 65536)
    assert refused.value.code == code
