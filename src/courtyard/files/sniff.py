"""What a file is, judged by its content alone (never by its name or the client's word).

The four raster formats that may be shown inline and thumbnailed are recognised by their
exact signatures; everything else goes to ``puremagic``'s signature database; text is told
apart from markup a browser would render (HTML, SVG, XML), which is never served inline.
"""

from __future__ import annotations

import puremagic

HEAD_BYTES = 8192
_MARKUP = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<svg")
# Patterns that make a browser (or a careless proxy) treat bytes as a document; a file that
# contains any of them anywhere is never served inline, whatever its signature says.
ACTIVE_MARKERS = (*_MARKUP, b"<?xml", b"<object", b"<embed", b"<meta", b"javascript:")


def _image(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed window is still text.
        if exc.start < len(head) - 3:
            return None
    sample = head[:2048].lower().lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"<svg" in sample:
        return "image/svg+xml"
    if any(marker in sample for marker in _MARKUP):
        return "text/html"
    if sample.startswith(b"<?xml"):
        return "application/xml"
    return "text/plain"


def _magic(head: bytes) -> str | None:
    try:
        found = puremagic.from_string(head, mime=True)
    except (puremagic.PureError, ValueError):
        return None
    return found.strip().lower() or None


def sniff(head: bytes) -> str:
    """The media type of a file from its first :data:`HEAD_BYTES` bytes."""
    if not head:
        return "application/octet-stream"
    image = _image(head)
    if image is not None:
        return image
    text = _text(head)
    if text is not None and text != "text/plain":
        return text
    magic = _magic(head)
    if magic is not None:
        return magic
    return text or "application/octet-stream"


def contains_active_content(chunks_lower_overlap: bytes) -> bool:
    """Whether a (lower-cased) window of a file holds markup a browser could execute."""
    return any(marker in chunks_lower_overlap for marker in ACTIVE_MARKERS)
