"""HTTP details of serving files: Content-Disposition, byte ranges and protective headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

# A file is never a page of this site: no scripts, no plugins, no navigation, its own origin.
FILE_CSP = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"
)
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_disposition(name: str, *, inline: bool) -> str:
    """RFC 6266: an ASCII fallback ``filename`` plus the exact UTF-8 ``filename*``."""
    fallback = (
        "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in name).strip()
        or "file"
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``[start, end)`` of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def content_range(self) -> str:
        """The Content-Range header of a 206 answer."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


class RangeNotSatisfiable(Exception):
    """The Range header asks for nothing inside the file (416)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range asked for, or None to send everything (absent, multiple, or not
    understood: RFC 9110 lets a server ignore Range)."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - length), size, size)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable
    end = size if not last else min(size, int(last) + 1)
    if end <= start:
        return None
    return ByteRange(start, end, size)
