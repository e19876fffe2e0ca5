"""`courtyard security reset-two-factor | unlock`: the operator's way back in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.security.support import FakeClock, enrol, password_step, problem_code
from tests.security.test_audit import courtyard
from tests.support import DatabaseFactory, Org, org_context, unique


@pytest.fixture
async def guarded(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[Org]:
    async with org_context(
        databases,
        workdir,
        security={"lockout_attempts": 2, "slow_down_after": 100, "two_factor": "optional"},
    ) as own:
        yield own


async def test_the_operator_resets_a_lost_second_factor(guarded: Org, workdir: Path) -> None:
    person = await guarded.person("lost")
    await enrol(person, FakeClock())
    assert (await password_step(guarded, person.username)).json()["second_factor_required"]
    code, said = await courtyard(guarded, workdir, "security", "reset-two-factor", person.username)
    assert code == 0, said
    assert "removed" in said
    assert (await person.get("/api/v1/me")).status_code == 401
    assert not (await password_step(guarded, person.username)).json()["second_factor_required"]
    code, said = await courtyard(guarded, workdir, "security", "reset-two-factor", person.username)
    assert code == 1 and "two_factor_not_enabled" in said
    code, said = await courtyard(guarded, workdir, "security", "reset-two-factor", "nobody-here")
    assert code == 1 and "not found" in said


async def test_the_operator_lifts_a_lockout(guarded: Org, workdir: Path) -> None:
    person = await guarded.person("locked")
    for _ in range(2):
        await password_step(guarded, person.username, "wrong guess again")
    refused = await password_step(guarded, person.username)
    assert refused.status_code == 429 and problem_code(refused) == "too_many_attempts"
    code, said = await courtyard(
        guarded, workdir, "security", "unlock", "--login", person.username.upper()
    )
    assert code == 0 and "unlocked" in said, said
    assert (await password_step(guarded, person.username)).status_code == 200
    code, said = await courtyard(guarded, workdir, "security", "unlock", "--login", unique("x"))
    assert code == 0 and "nothing to unlock" in said
    code, said = await courtyard(guarded, workdir, "security", "unlock")
    assert code == 2 and "exactly one" in said
    entries = await guarded.owner.get("/api/v1/admin/audit", params={"action": "auth.unlocked"})
    assert entries.json()["entries"][0]["details"] == {"via": "cli"}
