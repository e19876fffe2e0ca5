"""The preview worker pool survives hung and killed workers (the server never notices)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from courtyard.files.images import Thumbnailer
from tests.api.files_support import image_bytes


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_a_hung_or_killed_worker_is_replaced(tmp_path: Path) -> None:
    image = _write(tmp_path / "in.png", image_bytes("PNG", (300, 200)))
    thumbnailer = Thumbnailer(workers=1, timeout=30, max_pixels=10_000_000, box=100)
    try:
        first = await thumbnailer.describe(image, "image/png", tmp_path / "a.webp")
        assert (first.status, first.width, first.height) == ("ok", 300, 200)

        # A worker that dies mid-task (as a crashing decoder would): no preview, no error.
        pool = thumbnailer._executor()
        for process in list(pool._processes.values()):  # type: ignore[union-attr]
            os.kill(process.pid, signal.SIGKILL)
        killed = await thumbnailer.describe(image, "image/png", tmp_path / "b.webp")
        assert killed.status == "failed"
        assert killed.thumbnail is False

        # A worker that takes too long is abandoned and killed.
        thumbnailer._timeout = 0.0001
        hung = await thumbnailer.describe(image, "image/png", tmp_path / "c.webp")
        assert hung.status == "failed"

        thumbnailer._timeout = 30
        again = await thumbnailer.describe(image, "image/png", tmp_path / "d.webp")
        assert again.status == "ok"
        assert (tmp_path / "d.webp").stat().st_size > 0
    finally:
        await thumbnailer.close()


async def test_only_the_sniffed_format_is_decoded(tmp_path: Path) -> None:
    tiff_as_png = _write(tmp_path / "x.png", image_bytes("TIFF"))
    thumbnailer = Thumbnailer(workers=1, timeout=30, max_pixels=10_000_000, box=100)
    try:
        report = await thumbnailer.describe(tiff_as_png, "image/png", tmp_path / "x.webp")
        assert report.status == "undecodable"
        assert report.thumbnail is False
    finally:
        await thumbnailer.close()
