"""The event socket's opening handshake (RFC 6455, section 4.2) on a request uvicorn parsed.

uvicorn's HTTP parser reads the upgrade request and hands it over parsed (api/slowclients.py);
this module applies RFC 6455's rules to it and writes the answer. Until ADR 0025 the
``websockets`` library's sans-I/O ``ServerProtocol`` did both, at about 27 µs of CPU per
handshake on the reference VM: a protocol object and its parser, a header mapping, request
and response objects and a formatted date, for five header fields and one fixed answer. In a
reconnect storm that was a tenth of what a reconnect cost.

The rules, and the answer to each request that breaks them:

- ``GET`` only (405, with ``Allow: GET``), over HTTP/1.1 (505);
- an ASCII request target, and no body (400);
- ``Connection`` lists ``upgrade`` and ``Upgrade`` is ``websocket`` (426, with
  ``Upgrade: websocket``);
- ``Sec-WebSocket-Version: 13`` (426, with ``Sec-WebSocket-Version: 13``, as section 4.4
  asks);
- one ``Sec-WebSocket-Key``, 16 bytes in base64 (400);
- at most one ``Authorization`` and one ``Origin`` (400): two credentials or two origins are
  ambiguous, and the library's header mapping raised an error on them that nothing caught.

Extensions and subprotocols are not offered: their request headers are ignored, as the RFC
allows a server to.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
from dataclasses import dataclass
from http import HTTPStatus

#: RFC 6455, section 1.3: appended to the client's key before hashing.
_KEY_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Headers a request may carry once at most (lower case, as uvicorn gives them).
_SINGLE = (b"authorization", b"origin")


class HandshakeRefusal(Exception):
    """The upgrade request cannot be accepted: answer ``status`` with ``text``."""

    def __init__(
        self, status: HTTPStatus, text: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """An upgrade request that RFC 6455 accepts.

    ``headers`` are uvicorn's: lower-case names, raw values, in the order received.
    """

    path: str
    query: str
    key: bytes
    headers: list[tuple[bytes, bytes]]

    def header(self, name: bytes) -> str | None:
        """The value of header ``name`` (lower case); repeated values joined by ``, ``."""
        values = [value for key, value in self.headers if key == name]
        if not values:
            return None
        return b", ".join(values).decode("latin-1")

    def cookie_header(self) -> str | None:
        """The request's cookies (several ``Cookie`` headers joined by ``; ``)."""
        values = [value for key, value in self.headers if key == b"cookie"]
        return b"; ".join(values).decode("latin-1") if values else None


def read_upgrade(
    method: str, target: bytes, http_version: str, headers: list[tuple[bytes, bytes]]
) -> UpgradeRequest:
    """Check an upgrade request; raises :class:`HandshakeRefusal` naming what is wrong."""
    try:
        path_and_query = target.decode("ascii")
    except UnicodeDecodeError:
        raise HandshakeRefusal(HTTPStatus.BAD_REQUEST, "the request target must be ASCII") from None
    if method != "GET":
        raise HandshakeRefusal(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"a WebSocket upgrade must use GET, not {method}",
            (("Allow", "GET"),),
        )
    if http_version != "1.1":
        raise HandshakeRefusal(
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
            f"a WebSocket upgrade must use HTTP/1.1, not HTTP/{http_version}",
        )
    fields: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        fields.setdefault(name, []).append(value)
    if b"transfer-encoding" in fields or any(v != b"0" for v in fields.get(b"content-length", ())):
        raise HandshakeRefusal(HTTPStatus.BAD_REQUEST, "an upgrade request has no body")
    if b"upgrade" not in _tokens(fields.get(b"connection")) or _tokens(fields.get(b"upgrade")) != [
        b"websocket"
    ]:
        raise HandshakeRefusal(
            HTTPStatus.UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket only: send Connection: Upgrade and Upgrade: websocket",
            (("Upgrade", "websocket"),),
        )
    if fields.get(b"sec-websocket-version") != [b"13"]:
        raise HandshakeRefusal(
            HTTPStatus.UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken: send Sec-WebSocket-Version: 13",
            (("Sec-WebSocket-Version", "13"),),
        )
    keys = fields.get(b"sec-websocket-key", [])
    if len(keys) != 1 or not _is_key(keys[0]):
        raise HandshakeRefusal(
            HTTPStatus.BAD_REQUEST, "send one Sec-WebSocket-Key: 16 random bytes in base64"
        )
    for name in _SINGLE:
        if len(fields.get(name, ())) > 1:
            raise HandshakeRefusal(
                HTTPStatus.BAD_REQUEST, f"send one {name.decode().title()} header, not several"
            )
    path, _, query = path_and_query.partition("?")
    return UpgradeRequest(path=path, query=query, key=keys[0], headers=headers)


def switching_protocols(key: bytes) -> bytes:
    """The 101 answer to an accepted request with ``key`` (RFC 6455, section 4.2.2)."""
    # SHA-1 is what the protocol prescribes here: a fixed transform proving the server read
    # the key, not a security measure.
    digest = hashlib.sha1(key + _KEY_GUID, usedforsecurity=False).digest()
    accept = base64.b64encode(digest)
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def refusal_response(status: HTTPStatus, text: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    """A plain-text HTTP answer that refuses the upgrade; the connection closes after it."""
    body = (text + "\n").encode()
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _tokens(values: list[bytes] | None) -> list[bytes]:
    """The comma-separated tokens of a header's values, lower case."""
    if not values:
        return []
    return [t for value in values for token in value.split(b",") if (t := token.strip().lower())]


def _is_key(value: bytes) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except binascii.Error:
        return False
