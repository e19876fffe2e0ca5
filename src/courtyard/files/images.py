"""Image previews, made in a separate process so a hostile image cannot hurt the server.

Only PNG, JPEG, GIF and WebP reach Pillow, and Pillow is told to accept exactly the sniffed
format (so an EPS, TIFF or PDF renamed ``x.png`` is never parsed by another decoder). The
pixel count is read from the header and checked *before* anything is decoded; the worker
process also runs under a memory cap and a time limit. EXIF orientation is applied, the first
frame of an animation is used, and the thumbnail is written without any metadata.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from courtyard.files.sniff import ACTIVE_MARKERS

logger = logging.getLogger(__name__)

PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
WORKER_MEMORY_BYTES = 1536 * 1024 * 1024
_SCAN_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageReport:
    """What the worker found: ``status`` is ``ok``, ``too_large``, ``undecodable`` or
    ``failed``; dimensions are as displayed (after EXIF orientation)."""

    status: str
    width: int | None = None
    height: int | None = None
    thumbnail: bool = False
    active_content: bool = False


def scan_for_markup(path: str) -> bool:
    """Whether the file anywhere contains markup a browser could run (polyglots)."""
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_SCAN_CHUNK):
            window = tail + chunk.lower()
            if any(marker in window for marker in ACTIVE_MARKERS):
                return True
            tail = window[-16:]
    return False


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):  # not every platform allows it
        pass


def make_thumbnail(
    path: str, media_type: str, target: str, max_pixels: int, box: int
) -> dict[str, Any]:
    """Runs in the worker process: check, decode once, orient, shrink, save as WebP."""
    from PIL import Image, ImageOps

    active = scan_for_markup(path)
    fmt = PILLOW_FORMATS.get(media_type)
    if fmt is None:
        return {"status": "undecodable", "active_content": active}
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own guard, a second line behind ours
    try:
        with Image.open(path, formats=[fmt]) as image:  # reads the header only
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                return {"status": "too_large", "active_content": active}
            image.seek(0)
            shown_w, shown_h = (height, width) if _swapped(image) else (width, height)
            if fmt == "JPEG":
                image.draft("RGB", (box * 2, box * 2))  # decode at a reduced scale
            oriented = ImageOps.exif_transpose(image)
            mode = "RGBA" if oriented.mode in ("RGBA", "LA", "P", "PA") else "RGB"
            thumb = oriented.convert(mode)
            thumb.thumbnail((box, box))
            clean = Image.new(mode, thumb.size)
            clean.paste(thumb)
            clean.save(target, format="WEBP", quality=80, method=4)
    except (Image.DecompressionBombError, MemoryError):
        return {"status": "too_large", "active_content": active}
    except Exception:  # any decoder complaint: no preview, the file stays a download
        return {"status": "undecodable", "active_content": active}
    return {
        "status": "ok",
        "width": shown_w,
        "height": shown_h,
        "thumbnail": True,
        "active_content": active,
    }


def _swapped(image: Any) -> bool:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        return False
    return orientation in (5, 6, 7, 8)


class Thumbnailer:
    """A small pool of worker processes, started on first use and replaced if one dies or
    hangs."""

    def __init__(self, *, workers: int, timeout: float, max_pixels: int, box: int) -> None:
        self._workers = workers
        self._timeout = timeout
        self._max_pixels = max_pixels
        self._box = box
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_memory,
            )
        return self._pool

    async def describe(self, path: Path, media_type: str, target: Path) -> ImageReport:
        """Dimensions and a thumbnail at ``target`` (when the report says so)."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(
                self._executor(),
                make_thumbnail,
                str(path),
                media_type,
                str(target),
                self._max_pixels,
                self._box,
            )
            result = await asyncio.wait_for(future, self._timeout)
        except (TimeoutError, concurrent.futures.process.BrokenProcessPool) as exc:
            logger.warning("thumbnail worker failed (%s); restarting it", type(exc).__name__)
            self._discard_pool()
            return ImageReport(status="failed", active_content=True)
        return ImageReport(
            status=str(result["status"]),
            width=result.get("width"),
            height=result.get("height"),
            thumbnail=bool(result.get("thumbnail")),
            active_content=bool(result.get("active_content")),
        )

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A hung worker never returns: end the processes we started, then the pool.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the worker processes."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
