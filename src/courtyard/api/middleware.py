"""Raw ASGI middleware: request ids, security headers, and refusing NUL in URLs."""

from __future__ import annotations

import re
import secrets
from typing import Any, cast

import orjson
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from courtyard.logs import request_id_var

_NUL_IN_URL = re.compile(rb"%00|\x00", re.IGNORECASE)

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class EdgeMiddleware:
    """First thing every HTTP request meets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        token = request_id_var.set(request_id)
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            if _NUL_IN_URL.search(raw_path) or _NUL_IN_URL.search(scope.get("query_string", b"")):
                await _refuse_nul(send, request_id)
                return
            await self.app(scope, receive, _with_headers(send, request_id, scope["path"]))
        finally:
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            text = value.decode()
            if text.replace("-", "").isalnum():
                return text
    return None


def _with_headers(send: Send, request_id: str, path: str) -> Send:
    api = path.startswith("/api/")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
            headers.append((b"x-request-id", request_id.encode()))
            if api and b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            message = cast("Message", {**message, "headers": headers})
        await send(message)

    return wrapped


async def _refuse_nul(send: Send, request_id: str) -> None:
    body: dict[str, Any] = {
        "type": "urn:courtyard:problem:nul_character",
        "title": "Bad Request",
        "status": 400,
        "code": "nul_character",
        "detail": "URLs must not contain NUL characters",
    }
    payload = orjson.dumps(body)
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 400,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id.encode()),
            *SECURITY_HEADERS,
        ],
    }
    await send(start)
    body_event: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": payload,
        "more_body": False,
    }
    await send(body_event)
