"""Streaming multipart/form-data: the one file part of an upload, chunk by chunk.

Nothing is buffered beyond one network chunk: the request body is fed to a sans-I/O
multipart parser and the file part's bytes are handed on as they arrive. The whole body is
bounded (413 while streaming); exactly one part carrying a file name is accepted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import multipart
from litestar import Request
from litestar.datastructures import State

from courtyard.domain.errors import (
    InvalidInput,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MAX_PARTS = 16
_EXTENDED_NAME = re.compile(r"""filename\*\s*=\s*([^;\s]+)""", re.IGNORECASE)


@dataclass(slots=True)
class FilePart:
    """The file part: its client-given name and its bytes (an async iterator, read once)."""

    name: str
    content: AsyncIterator[bytes]


def multipart_boundary(content_type: str) -> str:
    """The boundary of a multipart/form-data body; 415 for any other body."""
    media, options = multipart.parse_options_header(content_type or "")
    if media.lower() != "multipart/form-data":
        raise UnsupportedMediaType("upload files as multipart/form-data", code="multipart_required")
    boundary = str(options.get("boundary", ""))
    if not boundary or len(boundary) > 200:
        raise MalformedRequest("the multipart boundary is missing", code="invalid_multipart")
    return boundary


def file_name(segment: multipart.MultipartSegment) -> str | None:
    """The part's file name: RFC 5987 ``filename*`` when given, else ``filename``; None for
    a part that is not a file."""
    disposition = next(
        (value for key, value in segment.headerlist if key.lower() == "content-disposition"), ""
    )
    extended = _EXTENDED_NAME.search(disposition)
    if extended is None:
        plain: str | None = segment.filename
        return plain
    charset, _, rest = extended.group(1).strip('"').partition("'")
    _, _, encoded = rest.partition("'")
    try:
        if charset.lower() == "utf-8":
            return unquote(encoded, encoding="utf-8", errors="strict")
        return unquote(encoded, encoding="latin-1")
    except UnicodeDecodeError:
        raise MalformedRequest(
            "the file name is not valid UTF-8", code="invalid_utf8", field="file"
        ) from None


def _malformed(exc: Exception) -> MalformedRequest:
    return MalformedRequest(f"invalid multipart body: {exc}", code="invalid_multipart")


async def _body(request: Request[Any, Any, State], max_bytes: int) -> AsyncIterator[bytes]:
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > max_bytes:
        raise PayloadTooLarge("the upload is too large", code="file_too_large")
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge("the upload is too large", code="file_too_large")
        if chunk:
            yield chunk


async def open_file_part(request: Request[Any, Any, State], max_bytes: int) -> FilePart:
    """Read up to the file part's headers and return it with a stream of its bytes."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            "compressed request bodies are not accepted", code="content_encoding_unsupported"
        )
    boundary = multipart_boundary(request.headers.get("content-type", ""))
    parser = multipart.PushMultipartParser(
        boundary, max_header_size=8192, max_header_count=16, max_segment_count=MAX_PARTS
    )
    body = _body(request, max_bytes)
    pending: list[Any] = []
    name: str | None = None
    # Parse until the file part's header; keep the events that follow it in `pending`.
    async for chunk in body:
        events = _parse(parser, chunk)
        for position, event in enumerate(events):
            if isinstance(event, multipart.MultipartSegment):
                name = file_name(event)
                if name is not None:
                    pending = events[position + 1 :]
                    break
        if name is not None:
            break
    if name is None:
        raise InvalidInput("the upload has no file part", field="file", code="no_file")
    return FilePart(name=name, content=_file_bytes(parser, body, pending))


class _FileEvents:
    """Turns parser events after the file part's header into the file's bytes."""

    def __init__(self) -> None:
        self.in_file = True
        self.finished = False

    def consume(self, events: list[Any]) -> list[bytes]:
        out: list[bytes] = []
        for event in events:
            if isinstance(event, multipart.MultipartSegment):
                if file_name(event) is not None:
                    raise InvalidInput(
                        "upload one file per request", field="file", code="one_file_only"
                    )
                self.in_file = False
            elif event is None:
                self.finished = self.finished or self.in_file
                self.in_file = False
            elif self.in_file:
                out.append(bytes(event))
        return out


def _parse(parser: multipart.PushMultipartParser, chunk: bytes) -> list[Any]:
    try:
        return list(parser.parse(chunk))
    except multipart.MultipartError as exc:
        raise _malformed(exc) from None


async def _file_bytes(
    parser: multipart.PushMultipartParser,
    body: AsyncIterator[bytes],
    pending: list[Any],
) -> AsyncIterator[bytes]:
    events = _FileEvents()
    for piece in events.consume(pending):
        yield piece
    async for chunk in body:
        for piece in events.consume(_parse(parser, chunk)):
            yield piece
    events.consume(_parse(parser, b""))
    try:
        parser.close()
    except multipart.MultipartError as exc:
        raise _malformed(exc) from None
    if not events.finished:
        raise MalformedRequest("the multipart body ended early", code="invalid_multipart")
