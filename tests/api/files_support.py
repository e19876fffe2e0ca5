"""Helpers for file tests: uploads (regular and hand-made multipart) and test images."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import httpx

from tests.support import Person


async def upload(
    person: Person, data: bytes, name: str = "file.bin", content_type: str = "text/plain"
) -> httpx.Response:
    """POST /api/v1/files with one multipart file part (httpx builds the body)."""
    return await person.client.post("/api/v1/files", files={"file": (name, data, content_type)})


async def upload_ok(person: Person, data: bytes, name: str = "file.bin") -> dict[str, Any]:
    """Upload and assert success."""
    response = await upload(person, data, name)
    assert response.status_code == 201, response.text
    return dict(response.json())


def raw_multipart(name_header: bytes, data: bytes, boundary: bytes = b"xYzZY") -> bytes:
    """A multipart body with the Content-Disposition parameters written by hand."""
    return (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; ' + name_header + b"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        b"--" + boundary + b"--\r\n"
    )


async def upload_raw(
    person: Person, body: bytes | Any, boundary: str = "xYzZY", **headers: str
) -> httpx.Response:
    """POST a hand-made multipart body (bytes, or an async iterator for chunked encoding)."""
    return await person.client.post(
        "/api/v1/files",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **headers},
    )


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    """A small real image in ``fmt`` (PNG, JPEG, GIF, WEBP, TIFF...)."""
    from PIL import Image

    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width``×``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_with_orientation(size: tuple[int, int], orientation: int) -> bytes:
    """A JPEG carrying EXIF orientation and a GPS tag (which thumbnails must not keep)."""
    from PIL import Image

    image = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SpyCam"  # Make
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def animated_gif() -> bytes:
    """Two frames: red, then blue."""
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
