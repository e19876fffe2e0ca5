"""Brute force: delays and lockouts per login name and per address, revealing nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.security.support import FakeClock, password_step, problem_code
from tests.support import PASSWORD, DatabaseFactory, Org, org_context, unique


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def guarded(
    databases: DatabaseFactory, workdir: Path, clock: FakeClock
) -> AsyncIterator[Org]:
    """Small thresholds: 4 failures per name, 12 per address, delays after 2."""
    async with org_context(
        databases,
        workdir,
        clock=clock,
        security={
            "lockout_attempts": 4,
            "lockout_ip_attempts": 12,
            "slow_down_after": 2,
            "max_delay_seconds": 0.5,
            "lockout_minutes": 10,
        },
    ) as own:
        yield own


async def _attempts(org: Org, login: str, count: int) -> list[tuple[int, str]]:
    results = []
    for _ in range(count):
        response = await password_step(org, login, "wrong guess number one")
        results.append((response.status_code, problem_code(response)))
    return results


async def test_a_known_and_an_unknown_account_are_locked_alike(
    guarded: Org, clock: FakeClock
) -> None:
    person = await guarded.person("target")
    known = await _attempts(guarded, person.username, 5)
    unknown = await _attempts(guarded, unique("ghost"), 5)
    assert known == unknown
    assert known[:4] == [(401, "invalid_credentials")] * 4
    assert known[4] == (429, "too_many_attempts")
    # The owner of the account, with the right password, waits too...
    locked = await password_step(guarded, person.username)
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 600
    # ...and is let in once the lockout is over.
    clock.advance(minutes=11)
    assert (await password_step(guarded, person.username)).status_code == 200
    entries = await guarded.owner.get("/api/v1/admin/audit", params={"action": "auth.lockout"})
    targets = [e["target"] for e in entries.json()["entries"]]
    assert f"user:{person.id}" in targets
    assert any(t.startswith("login sha256:") for t in targets)


async def test_failures_are_slowed_down_progressively(guarded: Org) -> None:
    login = unique("slow")
    durations = []
    for _ in range(4):
        started = time.monotonic()
        response = await password_step(guarded, login, "wrong guess number two")
        durations.append(time.monotonic() - started)
        assert response.status_code == 401
    # Failures 3 and 4 are held 0.25 s and 0.5 s at least (the first two are not delayed).
    assert durations[2] >= 0.25
    assert durations[3] >= 0.5


async def test_spraying_from_one_address_locks_the_address(guarded: Org) -> None:
    person = await guarded.person("sprayed")
    for index in range(12):
        response = await password_step(guarded, unique(f"spray{index}"), "Winter2026!Winter")
        assert response.status_code == 401
    blocked = await password_step(guarded, person.username)
    assert blocked.status_code == 429 and problem_code(blocked) == "too_many_attempts"
    entries = await guarded.owner.get("/api/v1/admin/audit", params={"action": "auth.lockout"})
    assert any(e["target"] == "ip:127.0.0.1" for e in entries.json()["entries"])


async def test_a_success_clears_the_name_counter(guarded: Org) -> None:
    person = await guarded.person("forgetful")
    assert [c for c, _ in await _attempts(guarded, person.username, 3)] == [401] * 3
    assert (await password_step(guarded, person.username, PASSWORD)).status_code == 200
    assert [c for c, _ in await _attempts(guarded, person.username, 3)] == [401] * 3


async def test_guessing_one_account_from_many_addresses_is_locked_by_name(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with org_context(
        databases,
        workdir,
        firewall={"trusted_proxies": ["127.0.0.1/32"]},
        rate_limits={"enabled": False},
        security={"lockout_attempts": 6, "slow_down_after": 100},
    ) as org:
        person = await org.person("hunted")
        statuses = []
        for attempt in range(8):
            response = await org.anonymous().post(
                "/api/v1/auth/sign-in",
                json={"login": person.username, "password": "guess guess guess"},
                headers={"X-Forwarded-For": f"198.51.100.{attempt + 1}"},
            )
            statuses.append(response.status_code)
        assert statuses == [401] * 6 + [429] * 2
        entries = await org.owner.get(
            "/api/v1/admin/audit",
            params={"action": "auth.sign_in", "outcome": "failure", "limit": 20},
        )
        addresses = {e["ip"] for e in entries.json()["entries"]}
        assert {f"198.51.100.{n}" for n in range(1, 7)} <= addresses
