"""Uploaded files: their public shape and the rules for names and types."""

from __future__ import annotations

import fnmatch
import unicodedata
from datetime import datetime

import msgspec

from courtyard.domain.errors import InvalidInput

MAX_NAME_CHARS = 255
# Raster formats a browser can show inline and Pillow may decode. Nothing else ever reaches
# the thumbnailer or is served inline (SVG, HTML, PDF, TIFF, PostScript... are downloads).
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Types a browser would run or render as a document from our origin: served as opaque bytes.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "text/javascript",
        "application/pdf",
        "application/postscript",
        "text/css",
    }
)
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A file as it appears on a message. Download it from ``/api/v1/files/{id}/content``."""

    id: int
    name: str
    media_type: str
    size: int
    width: int | None = None
    height: int | None = None
    has_thumbnail: bool = False


class FileInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An uploaded file as its uploader (or anyone who can see its message) sees it."""

    id: int
    name: str
    media_type: str
    size: int
    sha256: str
    uploader_id: int
    created_at: datetime
    message_id: int | None = None
    width: int | None = None
    height: int | None = None
    has_thumbnail: bool = False
    inline: bool = False

    def as_attachment(self) -> Attachment:
        """The shape carried by messages."""
        return Attachment(
            id=self.id,
            name=self.name,
            media_type=self.media_type,
            size=self.size,
            width=self.width,
            height=self.height,
            has_thumbnail=self.has_thumbnail,
        )


def clean_file_name(raw: str) -> str:
    """A display name from whatever the client sent: never used as a path.

    The last path component only, NFC, no control or invisible formatting characters, no
    leading/trailing dots or spaces, Windows device names defused, at most 255 characters
    (keeping the extension). NUL is refused, as everywhere else.
    """
    if "\x00" in raw:
        raise InvalidInput("file names must not contain NUL characters", field="file", code="nul")
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if char.isspace() else char
        for char in name
        if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn") or char == "\u200d"
    )
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "file"
    stem, dot, extension = name.rpartition(".")
    base = stem if dot else name
    if base.lower() in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name) > MAX_NAME_CHARS:
        keep = extension[:16] if dot and stem else ""
        name = name[: MAX_NAME_CHARS - len(keep) - 1].rstrip(" .") + ("." + keep if keep else "")
        name = name[:MAX_NAME_CHARS]
    return name


def type_matches(media_type: str, patterns: frozenset[str] | tuple[str, ...]) -> bool:
    """Whether ``media_type`` matches any pattern (``image/*``, ``application/pdf``)."""
    return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in patterns)


def served_type(media_type: str) -> str:
    """The Content-Type a download is sent with: active types become opaque bytes."""
    if media_type in ACTIVE_TYPES:
        return "application/octet-stream"
    if media_type.startswith("text/"):
        return f"{media_type}; charset=utf-8"
    return media_type
