"""Create the owner, users, tokens and channels through the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.httpc import HTTPPool

PASSWORD = "bench passphrase 0123"


@dataclass
class World:
    """What the harness created on one installation."""

    owner_token: str = ""
    owner_id: int = 0
    user_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)


async def create_owner(pool: HTTPPool, setup_token: str) -> tuple[str, int]:
    reply = await pool.json(
        "POST",
        "/api/v1/setup",
        {
            "setup_token": setup_token,
            "organization_name": "Bench",
            "username": "owner",
            "password": PASSWORD,
            "session_type": "token",
        },
    )
    return reply["token"], reply["user"]["id"]


async def _gather_limited(coros: Sequence[Any], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def create_users(
    pool: HTTPPool, owner_token: str, prefix: str, count: int, concurrency: int = 16
) -> tuple[list[int], list[str]]:
    """Create ``count`` members and sign each in with a bearer token."""

    async def one(i: int) -> tuple[int, str]:
        name = f"{prefix}{i}"
        user = await pool.json(
            "POST", "/api/v1/users", {"username": name, "password": PASSWORD}, owner_token
        )
        signed = await pool.json(
            "POST",
            "/api/v1/auth/sign-in",
            {"login": name, "password": PASSWORD, "session_type": "token"},
        )
        return user["id"], signed["token"]

    pairs = await _gather_limited([one(i) for i in range(count)], concurrency)
    return [p[0] for p in pairs], [p[1] for p in pairs]


async def sign_in_again(pool: HTTPPool, prefix: str, indexes: Sequence[int]) -> list[str]:
    async def one(i: int) -> str:
        signed = await pool.json(
            "POST",
            "/api/v1/auth/sign-in",
            {"login": f"{prefix}{i}", "password": PASSWORD, "session_type": "token"},
        )
        return str(signed["token"])

    return list(await _gather_limited([one(i) for i in indexes], 16))


async def create_channel(
    pool: HTTPPool, owner_token: str, name: str, member_ids: Sequence[int]
) -> int:
    """A public channel with these members (added 1,000 per call)."""
    first = list(member_ids[:1000])
    channel = await pool.json(
        "POST", "/api/v1/channels", {"name": name, "member_ids": first}, owner_token
    )
    channel_id = int(channel["id"])
    for start in range(1000, len(member_ids), 1000):
        chunk = list(member_ids[start : start + 1000])
        await pool.json(
            "POST", f"/api/v1/channels/{channel_id}/members", {"user_ids": chunk}, owner_token
        )
    return channel_id
