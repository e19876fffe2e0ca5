"""Two-factor authentication: enrolment, two-step sign-in, codes, re-authentication, policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets
from sqlalchemy import text

from courtyard.auth.totp import code_at
from tests.realtime.client import EventClient
from tests.security.support import (
    FakeClock,
    bearer,
    enrol,
    password_step,
    problem_code,
    second_step,
)
from tests.support import PASSWORD, DatabaseFactory, Org, org_context


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked(
    databases: DatabaseFactory, workdir: Path, clock: FakeClock
) -> AsyncIterator[Org]:
    """An organisation whose services run on a clock the test moves."""
    async with org_context(
        databases, workdir, clock=clock, security={"second_factor_attempts": 5}
    ) as own:
        yield own


async def test_enrolment_gives_a_uri_and_qr_code_and_needs_a_first_code(
    clocked: Org, clock: FakeClock
) -> None:
    person = await clocked.person("enrolling")
    started = await person.post("/api/v1/auth/two-factor/enrolment")
    assert started.status_code == 201, started.text
    body = started.json()
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = parse_qs(uri.query)
    assert query["secret"] == [body["secret"]]
    assert query["issuer"] == ["Courtyard"]
    assert body["qr_svg"].lstrip().startswith("<svg") and "<script" not in body["qr_svg"]

    status = (await person.get("/api/v1/auth/two-factor")).json()
    assert status == {
        "enabled": False,
        "required": False,
        "enrolment_pending": True,
        "recovery_codes_left": 0,
        "reauthentication_required": False,
    }
    wrong = await person.post("/api/v1/auth/two-factor/enrolment/confirm", {"code": "000000"})
    assert wrong.status_code == 422 and problem_code(wrong) == "invalid_code"
    code = code_at(body["secret"], clock())
    right = await person.post("/api/v1/auth/two-factor/enrolment/confirm", {"code": code})
    assert right.status_code == 200, right.text
    codes = right.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    status = (await person.get("/api/v1/auth/two-factor")).json()
    assert status["enabled"] and status["recovery_codes_left"] == 10
    again = await person.post("/api/v1/auth/two-factor/enrolment")
    assert again.status_code == 409 and problem_code(again) == "two_factor_already_enabled"


async def test_the_totp_secret_is_encrypted_at_rest(clocked: Org, clock: FakeClock) -> None:
    person = await clocked.person("sealed")
    secret, _ = await enrol(person, clock)
    async with clocked.server.services.context.storage.database.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT secret FROM two_factor WHERE user_id = :id"), {"id": person.id}
            )
        ).scalar_one()
        hashes = (
            await conn.execute(
                text("SELECT code_hash FROM recovery_codes WHERE user_id = :id"),
                {"id": person.id},
            )
        ).scalars()
        stored_hashes = list(hashes)
    assert secret not in stored and len(stored) > 60
    assert len(stored_hashes) == 10 and all(len(h) == 64 for h in stored_hashes)


async def test_sign_in_stays_pending_until_the_second_factor_passes(
    clocked: Org, clock: FakeClock
) -> None:
    person = await clocked.person("twostep")
    secret, _ = await enrol(person, clock)
    first = await password_step(clocked, person.username)
    assert first.status_code == 200, first.text
    pending = first.json()
    assert pending["second_factor_required"] is True
    assert pending["user"] is None

    # The pending session is not signed in: not over HTTP, not over the event socket.
    refused = await bearer(clocked, pending["token"]).get("/api/v1/me")
    assert refused.status_code == 401 and problem_code(refused) == "second_factor_required"
    with pytest.raises(websockets.InvalidStatus) as rejected:
        await EventClient.connect(clocked.server.ws_url, pending["token"])
    assert rejected.value.response.status_code == 401
    first_frame = await EventClient.connect(clocked.server.ws_url, wait_caught_up=False)
    await first_frame.send({"type": "auth", "token": pending["token"]})
    assert await first_frame.closed_with() == 4001
    assert [f for f in first_frame.seen if f.get("type") not in ("hello",)] == []

    clock.advance(seconds=30)
    done = await second_step(clocked, pending["token"], code=code_at(secret, clock()))
    assert done.status_code == 200, done.text
    signed_in = done.json()
    assert signed_in["second_factor_required"] is False
    assert signed_in["user"]["id"] == person.id
    # A new session: new id, new token (no fixation); the pending one is gone.
    assert signed_in["session_id"] != pending["session_id"]
    assert signed_in["token"] != pending["token"]
    me = await bearer(clocked, signed_in["token"]).get("/api/v1/me")
    assert me.status_code == 200
    reused = await second_step(clocked, pending["token"], code=code_at(secret, clock()))
    assert reused.status_code == 401 and problem_code(reused) == "sign_in_expired"


async def test_a_code_is_refused_twice_and_when_two_steps_old(
    clocked: Org, clock: FakeClock
) -> None:
    person = await clocked.person("replay")
    secret, _ = await enrol(person, clock)
    clock.advance(seconds=30)
    code = code_at(secret, clock())
    first = await password_step(clocked, person.username)
    assert (await second_step(clocked, first.json()["token"], code=code)).status_code == 200
    second = await password_step(clocked, person.username)
    replayed = await second_step(clocked, second.json()["token"], code=code)
    assert replayed.status_code == 401 and problem_code(replayed) == "invalid_code"
    stale = code_at(secret, clock() - timedelta(seconds=60))
    old = await second_step(clocked, second.json()["token"], code=stale)
    assert old.status_code == 401 and problem_code(old) == "invalid_code"
    for bad in ("12345", "abcdef", "1\x0023456"):
        response = await second_step(clocked, second.json()["token"], code=bad)
        assert response.status_code in (400, 401), bad


async def test_wrong_codes_are_throttled_then_locked(clocked: Org, clock: FakeClock) -> None:
    person = await clocked.person("guesser")
    secret, _ = await enrol(person, clock)
    pending = (await password_step(clocked, person.username)).json()["token"]
    statuses = []
    for guess in range(7):
        response = await second_step(clocked, pending, code=f"{guess:06d}")
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    locked = await second_step(clocked, pending, code=f"{6:06d}")
    assert problem_code(locked) == "too_many_attempts"
    assert int(locked.headers["retry-after"]) > 0
    # Even the right code waits out the lockout.
    clock.advance(seconds=30)
    right = await second_step(clocked, pending, code=code_at(secret, clock()))
    assert right.status_code == 429
    entries = await clocked.owner.get(
        "/api/v1/admin/audit", params={"action": "auth.lockout", "limit": 5}
    )
    assert any(e["target"] == f"user:{person.id}" for e in entries.json()["entries"])


async def test_a_recovery_code_signs_in_once(clocked: Org, clock: FakeClock) -> None:
    person = await clocked.person("recovering")
    _, codes = await enrol(person, clock)
    pending = (await password_step(clocked, person.username)).json()["token"]
    used = await second_step(clocked, pending, recovery_code=codes[3].upper())
    assert used.status_code == 200, used.text
    pending = (await password_step(clocked, person.username)).json()["token"]
    again = await second_step(clocked, pending, recovery_code=codes[3])
    assert again.status_code == 401 and problem_code(again) == "invalid_code"
    both = await second_step(clocked, pending, recovery_code=codes[4], code="123456")
    assert both.status_code == 422 and problem_code(both) == "one_code_required"
    entries = await clocked.owner.get(
        "/api/v1/admin/audit", params={"action": "two_factor.recovery_code_used"}
    )
    mine = [e for e in entries.json()["entries"] if e["actor_id"] == person.id]
    assert mine and mine[0]["details"] == {"remaining": 9}
    assert codes[3] not in entries.text


async def test_enabling_two_factor_ends_other_sessions_and_their_sockets(
    clocked: Org, clock: FakeClock
) -> None:
    person = await clocked.person("elsewhere")
    other = await clocked.sign_in(person.username)
    socket = await EventClient.connect(clocked.server.ws_url, other.token)
    await enrol(person, clock)
    assert await socket.closed_with() == 4004
    assert (await other.get("/api/v1/me")).status_code == 401
    assert (await person.get("/api/v1/me")).status_code == 200


async def test_sensitive_actions_need_a_recent_reauthentication(
    clocked: Org, clock: FakeClock
) -> None:
    person = await clocked.person("sensitive")
    secret, _ = await enrol(person, clock)
    assert (await person.get("/api/v1/auth/two-factor")).json()[
        "reauthentication_required"
    ] is False
    clock.advance(minutes=11)
    # The status says what the next sensitive action will answer.
    assert (await person.get("/api/v1/auth/two-factor")).json()["reauthentication_required"] is True
    token = await person.post("/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]})
    assert token.status_code == 403 and problem_code(token) == "reauthentication_required"
    codes = await person.post("/api/v1/auth/two-factor/recovery-codes")
    assert codes.status_code == 403 and problem_code(codes) == "reauthentication_required"
    disabled = await person.delete("/api/v1/auth/two-factor")
    assert disabled.status_code == 403 and problem_code(disabled) == "reauthentication_required"

    wrong = await person.post("/api/v1/auth/reauthenticate", {"password": "not my password!"})
    assert wrong.status_code == 403 and problem_code(wrong) == "reauthentication_failed"
    neither = await person.post("/api/v1/auth/reauthenticate", {})
    assert neither.status_code == 422
    by_code = await person.post("/api/v1/auth/reauthenticate", {"code": code_at(secret, clock())})
    assert by_code.status_code == 204, by_code.text
    assert (await person.get("/api/v1/auth/two-factor")).json()[
        "reauthentication_required"
    ] is False
    assert (
        await person.post("/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]})
    ).status_code == 201
    clock.advance(minutes=11)
    ok = await person.post("/api/v1/auth/reauthenticate", {"password": PASSWORD})
    assert ok.status_code == 204
    fresh = await person.post("/api/v1/auth/two-factor/recovery-codes")
    assert fresh.status_code == 200 and len(fresh.json()["recovery_codes"]) == 10
    assert (await person.delete("/api/v1/auth/two-factor")).status_code == 204
    status = (await person.get("/api/v1/auth/two-factor")).json()
    assert status["enabled"] is False
    # Without a second factor, the password alone signs in again.
    assert (await password_step(clocked, person.username)).json()["second_factor_required"] is False


async def test_role_changes_need_a_recent_reauthentication(clocked: Org, clock: FakeClock) -> None:
    member = await clocked.person("rolechange")
    clock.advance(minutes=11)
    refused = await clocked.owner.put(f"/api/v1/users/{member.id}/role", {"role": "admin"})
    assert refused.status_code == 403 and problem_code(refused) == "reauthentication_required"
    await clocked.owner.post("/api/v1/auth/reauthenticate", {"password": PASSWORD})
    allowed = await clocked.owner.put(f"/api/v1/users/{member.id}/role", {"role": "admin"})
    assert allowed.status_code == 200


async def test_an_organisation_can_require_two_factor_for_admins(
    databases: DatabaseFactory, workdir: Path
) -> None:
    clock = FakeClock()
    async with org_context(
        databases, workdir, clock=clock, security={"two_factor": "admins"}
    ) as org:
        owner = org.owner
        me = await owner.get("/api/v1/me")
        assert me.status_code == 403 and problem_code(me) == "two_factor_enrolment_required"
        made = await owner.post("/api/v1/users", {"username": "x-user", "password": PASSWORD})
        assert made.status_code == 403
        with pytest.raises(websockets.InvalidStatus):
            await EventClient.connect(org.server.ws_url, owner.token)
        status = await owner.get("/api/v1/auth/two-factor")
        assert status.status_code == 200 and status.json()["required"] is True
        await enrol(owner, clock)
        assert (await owner.get("/api/v1/me")).status_code == 200
        refused = await owner.delete("/api/v1/auth/two-factor")
        assert refused.status_code == 409
        assert problem_code(refused) == "two_factor_required_by_policy"
        # A personal token is held to the same rule as the session (every way in alike).
        issued = await owner.post("/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]})
        assert issued.status_code == 201, issued.text
        token_client = bearer(org, issued.json()["secret"])
        assert (await token_client.get("/api/v1/me")).status_code == 200
        await org.server.services.two_factor.reset(None, owner.id)
        refused_token = await token_client.get("/api/v1/me")
        assert refused_token.status_code == 403
        assert problem_code(refused_token) == "two_factor_enrolment_required"
        owner = await org.sign_in(owner.username)
        await enrol(owner, clock)
        # Members are not required to.
        org.owner = owner
        member = await org.person("free")
        assert (await member.get("/api/v1/me")).status_code == 200
        assert (await member.get("/api/v1/auth/two-factor")).json()["required"] is False


async def test_an_administrator_resets_a_lost_second_factor(clocked: Org, clock: FakeClock) -> None:
    person = await clocked.person("lostphone")
    await enrol(person, clock)
    member = await clocked.person("nosy")
    refused = await member.delete(f"/api/v1/users/{person.id}/two-factor")
    assert refused.status_code == 403 and problem_code(refused) == "admin_required"
    reset = await clocked.owner.delete(f"/api/v1/users/{person.id}/two-factor")
    assert reset.status_code == 204, reset.text
    assert (await person.get("/api/v1/me")).status_code == 401, "their sessions ended"
    signed_in = (await password_step(clocked, person.username)).json()
    assert signed_in["second_factor_required"] is False
    again = await clocked.owner.delete(f"/api/v1/users/{person.id}/two-factor")
    assert again.status_code == 409 and problem_code(again) == "two_factor_not_enabled"
    entries = await clocked.owner.get("/api/v1/admin/audit", params={"action": "two_factor.reset"})
    assert entries.json()["entries"][0]["target"] == f"user:{person.id}"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"code": {"$ne": None}}, 422),
        ({"code": ["123456"]}, 422),
        ({"code": 123456}, 422),
        ({"code": "1" * 65}, 422),
        ({"recovery_code": None, "code": None}, 422),
        ({"code": "123456", "extra": True}, 422),
    ],
)
async def test_malformed_second_factor_bodies_are_refused(
    clocked: Org, clock: FakeClock, body: dict[str, object], status: int
) -> None:
    person = await clocked.person("malformed")
    await enrol(person, clock)
    pending = (await password_step(clocked, person.username)).json()["token"]
    client = bearer(clocked, pending)
    response = await client.post("/api/v1/auth/sign-in/second-factor", json=body)
    assert response.status_code == status, response.text
    duplicate = await client.post(
        "/api/v1/auth/sign-in/second-factor",
        content=b'{"code": "123456", "code": "654321"}',
        headers={"content-type": "application/json"},
    )
    assert duplicate.status_code == 400
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_browser_finishes_signing_in_with_its_cookie_and_csrf_token(
    clocked: Org, clock: FakeClock
) -> None:
    person = await clocked.person("browser")
    secret, _ = await enrol(person, clock)
    browser = clocked.anonymous()
    first = await browser.post(
        "/api/v1/auth/sign-in", json={"login": person.username, "password": PASSWORD}
    )
    assert first.status_code == 200 and first.json()["second_factor_required"] is True
    pending_cookie = browser.cookies.get("courtyard_session")
    assert pending_cookie
    assert (await browser.get("/api/v1/me")).status_code == 401
    clock.advance(seconds=30)
    code = code_at(secret, clock())
    no_csrf = await browser.post("/api/v1/auth/sign-in/second-factor", json={"code": code})
    assert no_csrf.status_code == 403 and problem_code(no_csrf) == "csrf_failed"
    done = await browser.post(
        "/api/v1/auth/sign-in/second-factor",
        json={"code": code},
        headers={"X-CSRF-Token": first.json()["csrf_token"]},
    )
    assert done.status_code == 200, done.text
    assert browser.cookies.get("courtyard_session") not in (None, pending_cookie)
    assert (await browser.get("/api/v1/me")).status_code == 200
