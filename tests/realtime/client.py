"""A small event-socket client for tests (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


class EventClient:
    """One connection to /api/v1/events, with helpers to wait for frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls,
        ws_url: str,
        token: str | None = None,
        *,
        since: int | None = None,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        wait_caught_up: bool = True,
    ) -> EventClient:
        """Connect (bearer header when ``token`` is given) and wait for caught_up."""
        url = ws_url if since is None else f"{ws_url}?since={since}"
        extra = dict(headers or {})
        if token is not None:
            extra["Authorization"] = f"Bearer {token}"
        ws = await websockets.connect(
            url,
            additional_headers=extra,
            origin=origin,
            max_size=2**24,
            open_timeout=10,  # type: ignore[arg-type]
        )
        client = cls(ws)
        if wait_caught_up:
            await client.next_of("caught_up")
        return client

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = dict(json.loads(raw))
        self.seen.append(frame)
        return frame

    async def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of ``kind``, skipping others."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.next(max(left, 0.01))
            if frame.get("type") == kind:
                return frame

    async def until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Collect frames until ``done(frames)`` holds."""
        frames: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(frames):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timed out; got {[f.get('type') for f in frames]}")
            frames.append(await self.next(left))
        return frames

    async def quiet(
        self, seconds: float = 0.5, *, ignore: tuple[str, ...] = ("presence",)
    ) -> list[dict[str, Any]]:
        """Frames received within ``seconds`` (expected: none of interest)."""
        frames: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return [f for f in frames if f.get("type") not in ignore]
            try:
                frames.append(await self.next(left))
            except TimeoutError:
                return [f for f in frames if f.get("type") not in ignore]

    async def send(self, message: dict[str, Any]) -> None:
        """Send a JSON frame."""
        await self.ws.send(json.dumps(message))

    async def closed_with(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to close; returns the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def close(self) -> None:
        """Close politely."""
        await self.ws.close()
