"""The credential cache never outlives a revocation, on this process or another one."""

from __future__ import annotations

import asyncio

import httpx

from courtyard.app import build_services
from tests.support import LiveServer, Org, QueryCounter


async def test_repeated_requests_do_not_re_read_the_credential(
    org: Org, queries: QueryCounter
) -> None:
    person = await org.person("cached")
    await person.get("/api/v1/me")
    with queries.counting(include_auth=True) as counted:
        await person.get("/api/v1/me")
    reads = [s for s in counted.statements if "sessions" in s or "access_tokens" in s]
    assert reads == [], counted.statements


async def test_revocation_on_another_process_reaches_this_ones_cache(org: Org) -> None:
    """Two processes on one database and no shared bus: the one-second catch-up still brings
    sessions.ended from the database, which empties the other process's cache."""
    person = await org.person("twoplaces")
    settings = org.server.settings
    other = LiveServer(build_services(settings), settings)
    await other.start()
    try:
        auth = {"Authorization": f"Bearer {person.token}"}
        async with httpx.AsyncClient(base_url=other.url, headers=auth) as there:
            assert (await there.get("/api/v1/me")).status_code == 200  # now cached there
            assert (await person.post("/api/v1/auth/sign-out")).status_code == 204
            status = 200
            for _ in range(40):
                status = (await there.get("/api/v1/me")).status_code
                if status == 401:
                    break
                await asyncio.sleep(0.1)
            assert status == 401
    finally:
        await other.stop()
