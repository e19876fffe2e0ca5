"""Invite links: creating, inspecting, accepting, single use, revocation, expiry and roles."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx

from courtyard.app import build_services
from courtyard.services.context import utc_now
from courtyard.services.registry import Services
from tests.support import PASSWORD, LiveServer, Org, Person, unique


# --- helpers ----------------------------------------------------------------------------------
def problem_code(response: httpx.Response) -> str:
    """The stable error code of a problem+json response."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["code"])


async def invite(inviter: Person, **fields: Any) -> dict[str, Any]:
    """Create an invite and return the whole response body (asserting success)."""
    response = await inviter.post("/api/v1/invites", fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def accept(
    client: httpx.AsyncClient, token: str, username: str | None = None, **fields: Any
) -> httpx.Response:
    """Sign up through an invite with a bearer-token session."""
    body = {
        "token": token,
        "username": username or unique("new"),
        "password": PASSWORD,
        "session_type": "token",
        **fields,
    }
    return await client.post("/api/v1/invites/accept", json=body)


async def inspect(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """POST /api/v1/invites/inspect."""
    return await client.post("/api/v1/invites/inspect", json={"token": token})


@asynccontextmanager
async def server_later(org: Org, offset: timedelta) -> AsyncIterator[LiveServer]:
    """A second server over the same database whose service clock runs ``offset`` ahead."""
    services = build_services(org.server.settings)
    ctx = dataclasses.replace(services.context, clock=lambda: utc_now() + offset)
    later = LiveServer(
        Services.build(ctx, services.realtime, files=services.files), org.server.settings
    )
    await later.start()
    try:
        yield later
    finally:
        await later.stop()


# --- the happy path ---------------------------------------------------------------------------
async def test_accepting_an_invite_creates_the_user_with_its_role_and_signs_in(
    org: Org, admin: Person
) -> None:
    issued = await invite(admin, role="guest")
    token = issued["token"]
    assert token.startswith("cyi_")
    assert issued["path"] == f"/invite/{token}"
    assert issued["invite"]["role"] == "guest"
    assert issued["invite"]["created_by"] == admin.id
    assert issued["invite"]["used_at"] is None

    anonymous = org.anonymous()
    seen = await inspect(anonymous, token)
    assert seen.status_code == 200
    assert seen.json()["id"] == issued["invite"]["id"]
    assert seen.json()["role"] == "guest"

    username = unique("newbie")
    joined = await accept(anonymous, token, username, display_name="New Bie")
    assert joined.status_code == 201, joined.text
    body = joined.json()
    assert body["user"]["username"] == username
    assert body["user"]["role"] == "guest"
    assert body["user"]["display_name"] == "New Bie"
    me = await anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]
    again = await org.anonymous().post(
        "/api/v1/auth/sign-in", json={"login": username, "password": PASSWORD}
    )
    assert again.status_code == 200

    listed = (await admin.get("/api/v1/invites")).json()["invites"]
    mine = next(i for i in listed if i["id"] == issued["invite"]["id"])
    assert mine["used_at"] is not None
    assert token not in str(listed), "the link secret is never listed"


async def test_accepting_with_a_cookie_session_sets_the_cookie(org: Org, admin: Person) -> None:
    issued = await invite(admin)
    client = org.anonymous()
    joined = await accept(client, issued["token"], session_type="cookie")
    assert joined.status_code == 201
    assert joined.json()["token"] is None
    assert joined.json()["csrf_token"]
    assert str(client.cookies.get("courtyard_session")).startswith("cys_")
    assert (await client.get("/api/v1/me")).json()["id"] == joined.json()["user"]["id"]


async def test_invite_lifetime_defaults_from_configuration_and_can_be_chosen(
    org: Org, admin: Person
) -> None:
    default = (await invite(admin))["invite"]
    lifetime = datetime.fromisoformat(default["expires_at"]) - datetime.fromisoformat(
        default["created_at"]
    )
    assert lifetime == timedelta(hours=org.server.settings.accounts.invite_lifetime_hours)
    short = (await invite(admin, expires_in_hours=2))["invite"]
    short_lifetime = datetime.fromisoformat(short["expires_at"]) - datetime.fromisoformat(
        short["created_at"]
    )
    assert short_lifetime == timedelta(hours=2)
    for hours in (0, 2161, -1):
        refused = await admin.post("/api/v1/invites", {"expires_in_hours": hours})
        assert refused.status_code == 422, hours


# --- single use, revocation, expiry -----------------------------------------------------------
async def test_invite_is_single_use(org: Org, admin: Person) -> None:
    token = (await invite(admin))["token"]
    assert (await accept(org.anonymous(), token)).status_code == 201
    second = await accept(org.anonymous(), token)
    assert second.status_code == 404
    assert problem_code(second) == "invite_invalid"
    used = await inspect(org.anonymous(), token)
    assert problem_code(used) == "invite_invalid"


async def test_concurrent_accepts_of_one_invite_create_one_user(org: Org, admin: Person) -> None:
    token = (await invite(admin))["token"]
    names = [unique("racer") for _ in range(6)]
    responses = await asyncio.gather(*(accept(org.anonymous(), token, name) for name in names))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [404] * 5, statuses
    created = [
        name
        for name in names
        if (await admin.get("/api/v1/users", params={"q": name})).json()["users"]
    ]
    assert len(created) == 1, "the losers' accounts must have rolled back"


async def test_taken_username_does_not_use_up_the_invite(
    org: Org, admin: Person, alice: Person
) -> None:
    token = (await invite(admin))["token"]
    taken = await accept(org.anonymous(), token, alice.username)
    assert taken.status_code == 409
    assert problem_code(taken) == "username_taken"
    short = await accept(org.anonymous(), token, password="short")
    assert short.status_code == 422
    assert (await inspect(org.anonymous(), token)).status_code == 200
    assert (await accept(org.anonymous(), token)).status_code == 201


async def test_revoked_invite_is_refused(org: Org, admin: Person) -> None:
    issued = await invite(admin)
    invite_id, token = issued["invite"]["id"], issued["token"]
    assert (await admin.delete(f"/api/v1/invites/{invite_id}")).status_code == 204
    assert problem_code(await inspect(org.anonymous(), token)) == "invite_invalid"
    refused = await accept(org.anonymous(), token)
    assert refused.status_code == 404
    assert problem_code(refused) == "invite_invalid"
    listed = (await admin.get("/api/v1/invites")).json()["invites"]
    assert next(i for i in listed if i["id"] == invite_id)["revoked"] is True
    assert (await admin.delete("/api/v1/invites/999999999")).status_code == 404


async def test_expired_invite_is_refused(org: Org, admin: Person) -> None:
    token = (await invite(admin, expires_in_hours=1))["token"]
    async with server_later(org, timedelta(minutes=59)) as almost:
        still = await org.anonymous().post(
            f"{almost.url}/api/v1/invites/inspect", json={"token": token}
        )
        assert still.status_code == 200
    async with server_later(org, timedelta(hours=1, seconds=1)) as later:
        client = httpx.AsyncClient(base_url=later.url, timeout=30)
        try:
            expired = await inspect(client, token)
            assert expired.status_code == 404
            assert problem_code(expired) == "invite_invalid"
            refused = await accept(client, token)
            assert problem_code(refused) == "invite_invalid"
        finally:
            await client.aclose()
    assert (await accept(org.anonymous(), token)).status_code == 201, (
        "on the real clock the link is still valid"
    )


async def test_made_up_invite_token_is_refused(org: Org) -> None:
    for token in ("cyi_made_up", "not-even-a-prefix", ""):
        refused = await inspect(org.anonymous(), token)
        assert refused.status_code == 404, token
        assert problem_code(refused) == "invite_invalid"


# --- email-bound invites ----------------------------------------------------------------------
async def test_email_bound_invite_refuses_another_address(org: Org, admin: Person) -> None:
    email = f"{unique('nurse')}@hospital.example"
    token = (await invite(admin, email=email))["token"]
    other = await accept(org.anonymous(), token, email=f"{unique('other')}@hospital.example")
    assert other.status_code == 422
    assert problem_code(other) == "invite_email_mismatch"
    assert (await inspect(org.anonymous(), token)).status_code == 200, "still unused"

    same = await accept(org.anonymous(), token, email=email.upper())
    assert same.status_code == 201, same.text
    assert same.json()["user"]["email"].lower() == email


async def test_email_bound_invite_fills_in_the_address_when_none_is_given(
    org: Org, admin: Person
) -> None:
    email = f"{unique('clerk')}@hospital.example"
    token = (await invite(admin, email=email))["token"]
    joined = await accept(org.anonymous(), token)
    assert joined.status_code == 201
    assert joined.json()["user"]["email"] == email
    by_email = await org.anonymous().post(
        "/api/v1/auth/sign-in", json={"login": email, "password": PASSWORD}
    )
    assert by_email.status_code == 200


async def test_invite_with_an_invalid_email_is_refused(admin: Person) -> None:
    refused = await admin.post("/api/v1/invites", {"email": "not an address"})
    assert refused.status_code == 422
    assert problem_code(refused) == "invalid_email"


# --- who may invite whom ----------------------------------------------------------------------
async def test_members_cannot_create_list_or_revoke_invites(
    alice: Person, guest: Person, admin: Person
) -> None:
    issued = await invite(admin)
    for person in (alice, guest):
        created = await person.post("/api/v1/invites", {})
        assert created.status_code == 403
        assert problem_code(created) == "admin_required"
        assert problem_code(await person.get("/api/v1/invites")) == "admin_required"
        revoked = await person.delete(f"/api/v1/invites/{issued['invite']['id']}")
        assert problem_code(revoked) == "admin_required"
    listed = (await admin.get("/api/v1/invites")).json()["invites"]
    assert next(i for i in listed if i["id"] == issued["invite"]["id"])["revoked"] is False


async def test_admins_cannot_invite_admins_but_the_owner_can(
    org: Org, owner: Person, admin: Person
) -> None:
    refused = await admin.post("/api/v1/invites", {"role": "admin"})
    assert refused.status_code == 403
    assert problem_code(refused) == "role_not_allowed"
    issued = await invite(owner, role="admin")
    joined = await accept(org.anonymous(), issued["token"])
    assert joined.json()["user"]["role"] == "admin"


async def test_nobody_can_invite_an_owner(owner: Person, admin: Person) -> None:
    for inviter in (owner, admin):
        refused = await inviter.post("/api/v1/invites", {"role": "owner"})
        assert refused.status_code == 403
        assert problem_code(refused) == "role_not_allowed"


async def test_invite_list_is_newest_first(admin: Person) -> None:
    first = (await invite(admin))["invite"]["id"]
    second = (await invite(admin))["invite"]["id"]
    ids = [i["id"] for i in (await admin.get("/api/v1/invites")).json()["invites"]]
    assert ids.index(second) < ids.index(first)
