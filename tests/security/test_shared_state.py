"""Two servers (own services, engines and caches) on one database share lockouts and one chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from courtyard.app import build_services
from tests.security.support import problem_code
from tests.support import DatabaseFactory, LiveServer, Org, org_context, unique


@pytest.fixture
async def two_servers(
    databases: DatabaseFactory, workdir: Path
) -> AsyncIterator[tuple[Org, LiveServer]]:
    """An organisation on one server, and a second server on the same database."""
    async with org_context(
        databases, workdir, security={"lockout_attempts": 4, "slow_down_after": 100}
    ) as org:
        settings = org.server.settings
        second = LiveServer(build_services(settings), settings)
        await second.start()
        try:
            yield org, second
        finally:
            await second.stop()


async def test_failures_on_one_server_lock_the_name_on_the_other(
    two_servers: tuple[Org, LiveServer],
) -> None:
    org, second = two_servers
    login = unique("shared")
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as other:
        for index in range(4):
            target = org.anonymous() if index % 2 else other
            response = await target.post(
                "/api/v1/auth/sign-in", json={"login": login, "password": "wrong guess again"}
            )
            assert response.status_code == 401
        locked = await other.post(
            "/api/v1/auth/sign-in", json={"login": login, "password": "wrong guess again"}
        )
    assert locked.status_code == 429 and problem_code(locked) == "too_many_attempts"


async def test_concurrent_appends_from_two_servers_keep_one_chain(
    two_servers: tuple[Org, LiveServer],
) -> None:
    org, second = two_servers
    before = await org.server.services.audit.count()

    async def fail(client: httpx.AsyncClient, index: int) -> int:
        response = await client.post(
            "/api/v1/auth/sign-in",
            json={"login": unique(f"racer{index}"), "password": "wrong guess again"},
        )
        return response.status_code

    async with httpx.AsyncClient(base_url=second.url, timeout=60) as other:
        first = org.anonymous()
        statuses = await asyncio.gather(*(fail(first if i % 2 else other, i) for i in range(40)))
    assert statuses == [401] * 40
    report = await org.server.services.audit.verify()
    assert report.intact, report.problem
    assert report.checked == await second.services.audit.count()
    assert report.checked >= before + 40
