"""Files on the local filesystem, under ``<data_dir>/files`` by default."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from courtyard.files.store import CHUNK_BYTES, FileStore, check_key


class LocalFileStore(FileStore):
    """Keys map to paths below ``root``; a key is checked against the generated shape and
    the resolved path must stay below the root, so no key can name another file."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError("storage key escapes the store")
        return path

    async def put(self, key: str, source: Path) -> None:
        """Move ``source`` into place (a rename when it is on the same filesystem)."""
        target = self._path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
            except OSError:
                shutil.move(source, target)
            os.chmod(target, 0o640)

        await asyncio.to_thread(move)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream a byte range in chunks, reading off the event loop."""
        path = self._path(key)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                want = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                chunk = await asyncio.to_thread(handle.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int | None:
        """The file's size, or None when it is missing."""
        path = self._path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
