"""The opt-in Server-Timing header the benchmarks read server-side latency from."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import DatabaseFactory, Org, Person, org_context

_APP_DURATION = re.compile(r"^app;dur=(\d+\.\d{3})$")


async def test_server_timing_is_absent_by_default(org: Org, alice: Person) -> None:
    response = await alice.get("/api/v1/me")
    assert response.status_code == 200
    assert "server-timing" not in response.headers


async def test_server_timing_reports_the_time_spent_when_turned_on(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with org_context(databases, workdir, server={"timing_header": True}) as timed:
        owner = timed.owner
        channel = await owner.create_channel()
        await owner.send(channel["id"], "timed")
        page = await owner.get(f"/api/v1/channels/{channel['id']}/messages")
        assert page.status_code == 200
        match = _APP_DURATION.match(page.headers["server-timing"])
        assert match is not None, page.headers["server-timing"]
        assert 0 < float(match.group(1)) < 60_000
        # Refusals and unrouted paths carry it too: it is added at the edge.
        missing = await timed.anonymous().get("/api/v1/no-such-thing")
        assert missing.status_code == 404
        assert _APP_DURATION.match(missing.headers["server-timing"])
