"""A minimal ClamAV daemon client: INSTREAM over clamd's Unix socket.

PyPI's ``clamd`` and ``pyclamd`` are synchronous and unmaintained, ``aioclamd`` is little
used; the protocol is four commands long, so Courtyard speaks it itself (docs/adr/0009):
``zINSTREAM\\0``, then chunks each prefixed with their length as a 4-byte big-endian
integer, then a zero-length chunk; clamd answers
``stream: OK`` or ``stream: <signature> FOUND`` (or ``... ERROR``), NUL-terminated.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 256 * 1024


class ScannerError(Exception):
    """The scanner could not give a verdict (down, timed out, refused the stream)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A scan's outcome; ``signature`` names what was found."""

    clean: bool
    signature: str | None = None


class ClamdScanner:
    """Scans files with clamd; every call opens its own connection."""

    def __init__(self, socket_path: str, *, timeout: float = 60.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ScannerError(f"cannot reach clamd: {type(exc).__name__}") from exc

    async def ping(self) -> bool:
        """Whether clamd answers PING."""
        try:
            reader, writer = await self._connect()
        except ScannerError:
            return False
        try:
            writer.write(b"zPING\0")
            await writer.drain()
            reply = await asyncio.wait_for(reader.readuntil(b"\0"), self.timeout)
            return reply.rstrip(b"\0") == b"PONG"
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return False
        finally:
            writer.close()

    async def scan(self, path: Path) -> Verdict:
        """Stream ``path`` to clamd and return its verdict; ScannerError if there is none."""
        reader, writer = await self._connect()
        try:
            return await asyncio.wait_for(self._instream(reader, writer, path), self.timeout)
        except TimeoutError as exc:
            raise ScannerError("clamd did not answer in time") from exc
        finally:
            writer.close()

    async def _instream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: Path
    ) -> Verdict:
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            writer.write(b"zINSTREAM\0")
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                writer.write(struct.pack(">I", len(chunk)) + chunk)
                await writer.drain()
            writer.write(struct.pack(">I", 0))
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # clamd may stop reading (size limit) and say why: read its answer
        finally:
            await asyncio.to_thread(handle.close)
        try:
            reply = await reader.readuntil(b"\0")
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise ScannerError("clamd closed the connection without a verdict") from exc
        return parse_reply(reply.rstrip(b"\0").decode("utf-8", "replace"))


def parse_reply(reply: str) -> Verdict:
    """Interpret clamd's answer to INSTREAM."""
    body = reply.split(":", 1)[1].strip() if reply.startswith("stream:") else reply.strip()
    if body == "OK":
        return Verdict(clean=True)
    if body.endswith(" FOUND"):
        return Verdict(clean=False, signature=body.removesuffix(" FOUND").strip() or "unknown")
    raise ScannerError(f"clamd could not scan the file: {body[:200]}")
