"""Session policy: idle and absolute limits per role, on HTTP and the event socket; signing
out everywhere; fresh session ids at sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from tests.realtime.client import EventClient
from tests.security.support import FakeClock, problem_code
from tests.support import PASSWORD, DatabaseFactory, Org, org_context


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def limited(
    databases: DatabaseFactory, workdir: Path, clock: FakeClock
) -> AsyncIterator[Org]:
    """Members log off after 5 idle minutes; owners' sessions last 2 hours at most."""
    async with org_context(
        databases,
        workdir,
        clock=clock,
        security={
            "idle_timeout_minutes_by_role": {"member": 5},
            "session_lifetime_hours_by_role": {"owner": 2},
        },
    ) as own:
        yield own


async def test_an_idle_member_session_ends_and_an_active_one_does_not(
    limited: Org, clock: FakeClock
) -> None:
    active = await limited.person("active")
    idle = await limited.person("idle")
    assert (await idle.get("/api/v1/me")).status_code == 200  # cached now
    for _ in range(3):
        clock.advance(minutes=4)
        assert (await active.get("/api/v1/me")).status_code == 200
    # 12 minutes since the idle member's last request: the cached credential must not help.
    response = await idle.get("/api/v1/me")
    assert response.status_code == 401 and problem_code(response) == "session_expired"
    # Admins and owners have no idle limit here.
    assert (await limited.owner.get("/api/v1/me")).status_code == 200


async def test_the_absolute_lifetime_holds_for_the_role(limited: Org, clock: FakeClock) -> None:
    owner = await limited.sign_in(limited.owner.username)
    member = await limited.person("long")
    clock.advance(minutes=119)
    assert (await owner.get("/api/v1/me")).status_code == 200
    clock.advance(minutes=2)
    assert (await owner.get("/api/v1/me")).status_code == 401
    # Members keep the default lifetime (30 days) but must stay active.
    assert (await member.get("/api/v1/me")).status_code == 401


async def test_the_sweep_closes_the_sockets_of_idle_sessions(
    limited: Org, clock: FakeClock
) -> None:
    member = await limited.person("socket")
    socket = await EventClient.connect(limited.server.ws_url, member.token)
    clock.advance(minutes=6)
    ended = await limited.server.services.sessions.expire_sessions()
    assert ended >= 1
    assert await socket.closed_with() == 4004
    assert (await member.get("/api/v1/me")).status_code == 401
    entries = await limited.owner.get(
        "/api/v1/admin/audit", params={"action": "auth.session_expired"}
    )
    assert any(e["target"] == f"user:{member.id}" for e in entries.json()["entries"])


async def test_an_expired_session_cannot_open_a_socket(limited: Org, clock: FakeClock) -> None:
    member = await limited.person("late")
    clock.advance(minutes=6)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await EventClient.connect(limited.server.ws_url, member.token)
    assert refused.value.response.status_code == 401


async def test_sign_out_everywhere_ends_every_session_and_socket(org: Org) -> None:
    first = await org.person("everywhere")
    second = await org.sign_in(first.username)
    socket = await EventClient.connect(org.server.ws_url, second.token)
    response = await first.post("/api/v1/auth/sign-out-everywhere")
    assert response.status_code == 200 and response.json() == {"sessions_ended": 2}
    assert await socket.closed_with() == 4004
    for person in (first, second):
        assert (await person.get("/api/v1/me")).status_code == 401


async def test_sign_in_never_adopts_a_session_id_the_client_brings(org: Org) -> None:
    person = await org.person("fixation")
    planted = "cys_" + "A" * 43
    client = org.anonymous()
    client.cookies.set("courtyard_session", planted)
    response = await client.post(
        "/api/v1/auth/sign-in", json={"login": person.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    issued = response.cookies.get("courtyard_session")
    assert issued and issued != planted
    again = await org.anonymous().post(
        "/api/v1/auth/sign-in", json={"login": person.username, "password": PASSWORD}
    )
    assert again.json()["session_id"] != response.json()["session_id"]
