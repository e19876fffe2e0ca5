"""Raw ASGI middleware: request ids, security headers, and refusing NUL in URLs.

Every HTTP response — routed or not, success or error, JSON, HTML or file — leaves through
:func:`_with_headers`, which adds the security headers the route did not set itself. A route's
own ``Content-Security-Policy`` (the web client's, a file download's sandbox) is kept.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterable
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

#: Nothing may load, run, frame or be framed: right for JSON, errors and downloads.
DEFAULT_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"permissions-policy",
        b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
        b"interest-cohort=(), browsing-topics=()",
    ),
    (b"content-security-policy", DEFAULT_CSP),
]

#: The API reference page (Redoc) starts with one inline script holding the schema; it is
#: allowed by its hash, never by 'unsafe-inline'.
DOCS_PATHS = frozenset({"/api/v1/docs", "/api/v1/docs/"})
_MAX_DOCS_PAGE = 16 * 1024 * 1024
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)


class EdgeMiddleware:
    """First thing every HTTP request meets."""

    def __init__(self, app: ASGIApp, *, hsts: str | None = None, timing: bool = False) -> None:
        self.app = app
        self.hsts = hsts.encode() if hsts else None
        self.timing = timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter() if self.timing else None
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        token = request_id_var.set(request_id)
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        if self.hsts is not None and scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", self.hsts))
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            if _NUL_IN_URL.search(raw_path) or _NUL_IN_URL.search(scope.get("query_string", b"")):
                await send_problem(
                    send, 400, "nul_character", "URLs must not contain NUL characters", extra
                )
                return
            wrapped = _with_headers(send, extra, scope["path"], started)
            if scope["method"] == "HEAD":
                # HEAD is GET without the body (RFC 9110 9.3.2), for every GET route at once:
                # monitors and `curl -I` probe with it.
                scope = cast("Scope", {**scope, "method": "GET"})
                wrapped = _without_body(wrapped)
            if scope["path"] in DOCS_PATHS:
                wrapped = _docs_page_policy(wrapped)
            await self.app(scope, receive, wrapped)
        finally:
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            text = value.decode()
            if text.replace("-", "").isalnum():
                return text
    return None


def _with_headers(
    send: Send, extra: list[tuple[bytes, bytes]], path: str, started: float | None
) -> Send:
    api = path.startswith("/api/")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
            headers.extend(h for h in extra if h[0] not in present)
            if api and b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            if started is not None:
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", b"app;dur=%.3f" % elapsed_ms))
            message = cast("Message", {**message, "headers": headers})
        await send(message)

    return wrapped


def _without_body(send: Send) -> Send:
    """Pass the response's status and headers on; send no body bytes."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = cast(
                "Message",
                {**message, "body": b""},
            )
        await send(message)

    return wrapped


def _docs_page_policy(send: Send) -> Send:
    """Buffer the (bounded) docs page and give it a CSP allowing its own inline script by
    hash; styles may be inline (Redoc injects them), scripts may not."""
    start: dict[str, Any] | None = None
    chunks: list[bytes] = []
    size = 0

    async def wrapped(message: Message) -> None:
        nonlocal start, size
        if message["type"] == "http.response.start":
            given = dict(message.get("headers", []))
            if b"content-security-policy" in given or not given.get(
                b"content-type", b""
            ).startswith(b"text/html"):
                await send(message)
                return
            start = dict(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        body_event = message
        chunks.append(body_event.get("body", b""))
        size += len(chunks[-1])
        if body_event.get("more_body", False) and size <= _MAX_DOCS_PAGE:
            return
        body = b"".join(chunks)
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
            for script in _INLINE_SCRIPT.findall(body)
        )
        policy = (
            f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        ).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers += [(b"content-security-policy", policy)]
        if not body_event.get("more_body", False):
            headers.append((b"content-length", str(len(body)).encode()))
        await send(cast("Message", {**start, "headers": headers}))
        await send(cast("Message", {**body_event, "body": body}))

    return wrapped


async def send_problem(
    send: Send,
    status: int,
    code: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with an RFC 9457 problem (for refusals made before the application runs)."""
    from http import HTTPStatus

    body: dict[str, Any] = {
        "type": f"urn:courtyard:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    payload = orjson.dumps(body)
    extra = list(headers)
    present = {name for name, _ in extra}
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store"),
            *extra,
            *(h for h in SECURITY_HEADERS if h[0] not in present),
        ],
    }
    await send(start)
    body_event: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": payload,
        "more_body": False,
    }
    await send(body_event)
