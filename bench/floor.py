"""The "floor": the leanest uvloop fan-out of the same frames to the same clients.

No application logic at all: a WebSocket upgrade on ``/api/v1/events`` (no auth check) answers
``hello`` and ``caught_up``; ``POST .../messages`` answers 201 at once and writes one
pre-encoded text frame, padded to the size of Courtyard's ``message.created`` frame, to every
open event socket with one ``transport.write`` each. Courtyard's fan-out is reported as a ratio
to this server, measured in the same run with the same clients and the same publisher.

    python -m bench.floor --port 9100 --payload-bytes 480
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import struct

import httptools
import orjson
import uvloop

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"


def text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


class Floor:
    def __init__(self, payload_bytes: int) -> None:
        self.payload_bytes = payload_bytes
        self.sockets: set[asyncio.Transport] = set()
        self.position = 0

    def frame_for(self, channel_id: int, text: str) -> bytes:
        self.position += 1
        head = (
            b'{"position":%d,"type":"message.created","message":{"id":%d,"channel_id":%d,'
            b'"seq":%d,"text":' % (self.position, self.position, channel_id, self.position)
        )
        body = head + orjson.dumps(text) + b',"pad":"'
        missing = max(0, self.payload_bytes - len(body) - 3)
        return text_frame(body + b"x" * missing + b'"}}')

    def fan_out(self, frame: bytes) -> None:
        for transport in self.sockets:
            transport.write(frame)


class FloorProtocol(asyncio.Protocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.ws = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ws and self.transport is not None:
            self.floor.sockets.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.ws:
            return  # pongs and closes from clients are ignored
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return
        transport = self.transport
        assert transport is not None
        method = self.parser.get_method()
        frame = None
        if method == b"POST" and self.url.endswith(b"/messages"):
            parts = self.url.split(b"/")
            try:
                channel_id = int(parts[-2])
                text = orjson.loads(b"".join(self.body)).get("text", "")
            except (ValueError, IndexError, orjson.JSONDecodeError):
                channel_id, text = 0, ""
            frame = self.floor.frame_for(channel_id, text)
            reply = b'{"id":%d}' % self.floor.position
            status = b"201 Created"
        elif self.url.startswith(b"/healthz"):
            reply, status = b'{"status":"ok"}', b"200 OK"
        else:
            reply, status = b'{"detail":"not found"}', b"404 Not Found"
        transport.write(
            b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(reply), reply)
        )
        if frame is not None:
            self.floor.fan_out(frame)

    def _upgrade(self) -> None:
        transport = self.transport
        assert transport is not None
        key = self.headers.get(b"sec-websocket-key", b"")
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.ws = True
        position = self.floor.position
        transport.write(text_frame(b'{"type":"hello","position":%d}' % position))
        transport.write(text_frame(b'{"type":"caught_up","position":%d}' % position))
        self.floor.sockets.add(transport)


async def serve(host: str, port: int, payload_bytes: int) -> None:
    floor = Floor(payload_bytes)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FloorProtocol(floor), host, port, backlog=4096, reuse_address=True
    )
    print(f"floor serving on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payload-bytes", type=int, default=480)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.payload_bytes))


if __name__ == "__main__":
    main()
