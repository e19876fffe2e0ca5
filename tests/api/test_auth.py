"""Signing in and out, cookie sessions and CSRF, sessions, passwords, access tokens and bots."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx

from courtyard.app import build_services
from courtyard.services.context import utc_now
from courtyard.services.registry import Services
from tests.support import PASSWORD, LiveServer, Org, Person, unique

SIGN_IN = "/api/v1/auth/sign-in"
NEW_PASSWORD = "a much longer and newer passphrase"


# --- helpers ----------------------------------------------------------------------------------
async def sign_in(
    org: Org, login: str, password: str = PASSWORD, session_type: str = "token"
) -> httpx.Response:
    """A raw sign-in attempt from a fresh anonymous client."""
    return await org.anonymous().post(
        SIGN_IN, json={"login": login, "password": password, "session_type": session_type}
    )


def bearer(org: Org, secret: str, base_url: str | None = None) -> httpx.AsyncClient:
    """A client that sends ``secret`` as its bearer token."""
    client = org.anonymous()
    if base_url is not None:
        client.base_url = httpx.URL(base_url)
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


async def new_user(org: Org, name: str = "user", **fields: Any) -> dict[str, Any]:
    """Create a user through the owner and return it (not signed in)."""
    username = unique(name)
    response = await org.owner.post(
        "/api/v1/users", {"username": username, "password": PASSWORD, **fields}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def cookie_session(org: Org, username: str) -> tuple[httpx.AsyncClient, str]:
    """A client holding a cookie session (and no Authorization header), and its CSRF token."""
    client = org.anonymous()
    response = await client.post(
        SIGN_IN, json={"login": username, "password": PASSWORD, "session_type": "cookie"}
    )
    assert response.status_code == 200, response.text
    assert client.cookies.get("courtyard_session"), "the client should now hold the cookie"
    return client, str(response.json()["csrf_token"])


async def personal_token(
    person: Person, scopes: list[str], **fields: Any
) -> tuple[dict[str, Any], str]:
    """Create a personal access token; returns its metadata and secret."""
    response = await person.post(
        "/api/v1/auth/tokens", {"name": unique("tok"), "scopes": scopes, **fields}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["token"], body["secret"]


async def create_bot(admin: Person) -> dict[str, Any]:
    """An administrator creates a bot."""
    response = await admin.post("/api/v1/bots", {"username": unique("bot")})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def bot_token(admin: Person, bot_id: int, scopes: list[str]) -> str:
    """An administrator issues a bot token; returns its secret."""
    response = await admin.post(f"/api/v1/bots/{bot_id}/tokens", {"name": "ci", "scopes": scopes})
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


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


def tampered(secret: str) -> str:
    """``secret`` with its last character changed (always to a different one)."""
    return secret[:-1] + ("1" if secret.endswith("0") else "0")


def problem_code(response: httpx.Response) -> str:
    """The stable error code of a problem+json response."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["code"])


# --- signing in -------------------------------------------------------------------------------
async def test_sign_in_accepts_username_or_email_in_any_case(org: Org) -> None:
    user = await new_user(org, "dora", email=f"Dora.{unique('x')}@Example.COM")
    by_name = await sign_in(org, user["username"].upper())
    by_email = await sign_in(org, f"  {user['email'].swapcase()}  ")
    for response in (by_name, by_email):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"]["id"] == user["id"]
        assert body["token"].startswith("cys_")
        assert body["csrf_token"] is None
        assert "set-cookie" not in response.headers, "token sessions set no cookie"
        me = await bearer(org, body["token"]).get("/api/v1/me")
        assert me.json()["username"] == user["username"]
    assert by_name.json()["session_id"] != by_email.json()["session_id"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(org: Org) -> None:
    user = await new_user(org)
    wrong = await sign_in(org, user["username"], "not the right password")
    unknown = await sign_in(org, unique("nobody"), "not the right password")
    unknown_email = await sign_in(org, f"{unique('nobody')}@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == unknown_email.status_code == 401
    assert problem_code(wrong) == "invalid_credentials"
    assert wrong.json() == unknown.json() == unknown_email.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


async def test_sign_in_is_refused_when_the_account_is_deactivated(org: Org, admin: Person) -> None:
    user = await new_user(org)
    assert (await admin.post(f"/api/v1/users/{user['id']}/deactivate")).status_code == 200
    refused = await sign_in(org, user["username"])
    assert refused.status_code == 401
    assert problem_code(refused) == "account_deactivated"
    # Without the right password, a deactivated account looks like any other failure.
    guessed = await sign_in(org, user["username"], "a wrong guess entirely")
    assert problem_code(guessed) == "invalid_credentials"


async def test_bots_cannot_sign_in_with_a_password(org: Org, admin: Person) -> None:
    bot = await create_bot(admin)
    for password in (PASSWORD, "", "anything at all here"):
        refused = await sign_in(org, bot["username"], password)
        assert refused.status_code == 401
        assert problem_code(refused) == "invalid_credentials"


async def test_sign_in_rejects_nul_and_oversized_input_without_a_server_error(org: Org) -> None:
    user = await new_user(org)
    nul = await sign_in(org, user["username"] + "\x00", PASSWORD)
    assert nul.status_code == 400  # the strict JSON parser refuses NUL before sign-in runs
    long_login = await sign_in(org, "x" * 255, PASSWORD)
    assert long_login.status_code == 422


async def test_requests_without_valid_credentials_are_refused_with_a_code(org: Org) -> None:
    anonymous = org.anonymous()
    missing = await anonymous.get("/api/v1/me")
    assert missing.status_code == 401
    assert problem_code(missing) == "not_signed_in"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    basic = await anonymous.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert problem_code(basic) == "invalid_authorization_header"
    for secret in ("garbage", "cys_forged", "cyp_forged", "cyi_not_a_credential"):
        forged = await bearer(org, secret).get("/api/v1/me")
        assert forged.status_code == 401, secret
        assert problem_code(forged) in ("invalid_token", "session_expired"), secret


# --- cookie sessions and CSRF -------------------------------------------------------------------
async def test_cookie_sign_in_sets_httponly_samesite_cookie_and_returns_csrf_token(
    org: Org, alice: Person
) -> None:
    response = await sign_in(org, alice.username, session_type="cookie")
    assert response.status_code == 200
    body = response.json()
    assert body["token"] is None, "the session secret must not be readable by scripts"
    assert body["csrf_token"]
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session = cookies["courtyard_session"].lower()
    assert "httponly" in session
    assert "samesite=lax" in session or "samesite=strict" in session
    assert "path=/" in session
    csrf = cookies["courtyard_csrf"].lower()
    assert "httponly" not in csrf, "the page reads the CSRF cookie to echo it in a header"
    assert f"courtyard_csrf={body['csrf_token']}".lower() in csrf
    secret = cookies["courtyard_session"].split(";", 1)[0].split("=", 1)[1]
    assert secret.startswith("cys_")
    assert secret not in response.text


async def test_cookie_get_needs_no_csrf_header(org: Org, alice: Person) -> None:
    client, _ = await cookie_session(org, alice.username)
    me = await client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["id"] == alice.id


async def test_cookie_change_is_refused_when_the_csrf_header_is_missing_or_wrong(
    org: Org, alice: Person
) -> None:
    client, csrf = await cookie_session(org, alice.username)
    name = unique("csrf")
    missing = await client.post("/api/v1/channels", json={"name": name})
    assert missing.status_code == 403
    assert problem_code(missing) == "csrf_failed"
    wrong = await client.post(
        "/api/v1/channels", json={"name": name}, headers={"X-CSRF-Token": tampered(csrf)}
    )
    assert problem_code(wrong) == "csrf_failed"
    deleting = await client.delete("/api/v1/auth/sessions/1")
    assert problem_code(deleting) == "csrf_failed"
    mine = (await alice.get("/api/v1/channels")).json()["channels"]
    assert name not in [c["channel"]["name"] for c in mine], "a refused change must not happen"

    done = await client.post(
        "/api/v1/channels", json={"name": name}, headers={"X-CSRF-Token": csrf}
    )
    assert done.status_code == 201, done.text
    assert done.json()["name"] == name


async def test_cookie_post_with_a_text_plain_body_is_refused(org: Org, alice: Person) -> None:
    client, csrf = await cookie_session(org, alice.username)
    name = unique("form")
    payload = json.dumps({"name": name})
    form_like = await client.post(
        "/api/v1/channels", content=payload, headers={"Content-Type": "text/plain"}
    )
    assert form_like.status_code in (403, 415)
    with_header = await client.post(
        "/api/v1/channels",
        content=payload,
        headers={"Content-Type": "text/plain", "X-CSRF-Token": csrf},
    )
    assert with_header.status_code == 415
    assert problem_code(with_header) == "json_required"
    mine = (await alice.get("/api/v1/channels")).json()["channels"]
    assert name not in [c["channel"]["name"] for c in mine]


async def test_cookie_sign_out_clears_both_cookies_and_ends_the_session(
    org: Org, alice: Person
) -> None:
    client, csrf = await cookie_session(org, alice.username)
    secret = client.cookies["courtyard_session"]
    without_csrf = await client.post("/api/v1/auth/sign-out")
    assert problem_code(without_csrf) == "csrf_failed"
    out = await client.post("/api/v1/auth/sign-out", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    cleared = {c.split("=", 1)[0]: c.lower() for c in out.headers.get_list("set-cookie")}
    assert set(cleared) == {"courtyard_session", "courtyard_csrf"}
    assert all("max-age=0" in c for c in cleared.values())
    stale = org.anonymous()
    stale.cookies.set("courtyard_session", secret)
    replay = await stale.get("/api/v1/me")
    assert replay.status_code == 401
    assert problem_code(replay) == "session_expired"


# --- sessions ---------------------------------------------------------------------------------
async def test_session_list_marks_only_the_current_session(org: Org, alice: Person) -> None:
    other = await org.sign_in(alice.username)
    listed = (await alice.get("/api/v1/auth/sessions")).json()["sessions"]
    assert len(listed) == 2
    current = [s for s in listed if s["current"]]
    assert len(current) == 1
    from_other = (await other.get("/api/v1/auth/sessions")).json()["sessions"]
    other_current = next(s for s in from_other if s["current"])
    assert other_current["id"] != current[0]["id"]
    assert {s["id"] for s in listed} == {s["id"] for s in from_other}
    assert all("token" not in s and "token_hash" not in s for s in listed)
    assert all(s["user_agent"].startswith("python-httpx") for s in listed)


async def test_revoking_a_session_signs_only_that_device_out(
    org: Org, alice: Person, bob: Person
) -> None:
    laptop = await org.sign_in(alice.username)
    laptop_id = next(
        s["id"]
        for s in (await laptop.get("/api/v1/auth/sessions")).json()["sessions"]
        if s["current"]
    )
    bob_session = next(
        s["id"] for s in (await bob.get("/api/v1/auth/sessions")).json()["sessions"] if s["current"]
    )
    # Someone else's session id looks exactly like a missing one.
    assert (await alice.delete(f"/api/v1/auth/sessions/{bob_session}")).status_code == 404
    assert (await bob.get("/api/v1/me")).status_code == 200

    assert (await alice.delete(f"/api/v1/auth/sessions/{laptop_id}")).status_code == 204
    gone = await laptop.get("/api/v1/me")
    assert gone.status_code == 401
    assert problem_code(gone) == "session_expired"
    assert (await alice.get("/api/v1/me")).status_code == 200
    assert (await alice.delete(f"/api/v1/auth/sessions/{laptop_id}")).status_code == 404


async def test_revoke_others_keeps_only_the_current_session(org: Org, alice: Person) -> None:
    others = [await org.sign_in(alice.username) for _ in range(3)]
    assert (await alice.post("/api/v1/auth/sessions/revoke-others")).status_code == 204
    for other in others:
        assert (await other.get("/api/v1/me")).status_code == 401
    listed = (await alice.get("/api/v1/auth/sessions")).json()["sessions"]
    assert [s["current"] for s in listed] == [True]


async def test_sign_out_ends_the_session_and_its_token_gets_401(org: Org, alice: Person) -> None:
    second = await org.sign_in(alice.username)
    assert (await alice.post("/api/v1/auth/sign-out")).status_code == 204
    after = await alice.get("/api/v1/me")
    assert after.status_code == 401
    assert problem_code(after) == "session_expired"
    assert (await second.get("/api/v1/me")).status_code == 200, "other sessions stay"


async def test_sign_out_with_a_personal_token_is_refused(org: Org, alice: Person) -> None:
    _, secret = await personal_token(alice, ["read", "write"])
    refused = await bearer(org, secret).post("/api/v1/auth/sign-out")
    assert refused.status_code == 422
    assert problem_code(refused) == "not_a_session"
    assert (await bearer(org, secret).get("/api/v1/me")).status_code == 200


async def test_change_password_is_refused_when_the_current_password_is_wrong(
    org: Org, alice: Person
) -> None:
    other = await org.sign_in(alice.username)
    refused = await alice.post(
        "/api/v1/auth/password",
        {"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert refused.status_code == 403
    assert problem_code(refused) == "wrong_password"
    assert (await other.get("/api/v1/me")).status_code == 200, "nothing changed"
    assert (await sign_in(org, alice.username, PASSWORD)).status_code == 200


async def test_change_password_is_refused_when_the_new_password_is_too_short(
    org: Org, alice: Person
) -> None:
    refused = await alice.post(
        "/api/v1/auth/password", {"current_password": PASSWORD, "new_password": "short"}
    )
    assert refused.status_code == 422
    assert problem_code(refused) == "password_too_short"
    assert (await sign_in(org, alice.username, PASSWORD)).status_code == 200


async def test_change_password_ends_other_sessions_and_keeps_the_current_one(
    org: Org, alice: Person
) -> None:
    phone = await org.sign_in(alice.username)
    changed = await alice.post(
        "/api/v1/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 204, changed.text
    assert (await phone.get("/api/v1/me")).status_code == 401
    assert (await alice.get("/api/v1/me")).status_code == 200
    old = await sign_in(org, alice.username, PASSWORD)
    assert problem_code(old) == "invalid_credentials"
    assert (await sign_in(org, alice.username, NEW_PASSWORD)).status_code == 200


# --- personal access tokens -------------------------------------------------------------------
async def test_personal_token_secret_is_shown_once_and_listed_without_it(
    org: Org, alice: Person
) -> None:
    created = await alice.post(
        "/api/v1/auth/tokens", {"name": "laptop script", "scopes": ["read", "write"]}
    )
    assert created.status_code == 201
    token, secret = created.json()["token"], created.json()["secret"]
    assert secret.startswith("cyp_")
    assert token["prefix"] == secret[:8]
    assert token["scopes"] == ["read", "write"]
    assert token["user_id"] == alice.id
    assert token["expires_at"] is None

    listing = await alice.get("/api/v1/auth/tokens")
    assert [t["id"] for t in listing.json()["tokens"]] == [token["id"]]
    assert secret not in listing.text
    assert secret[8:16] not in listing.text

    me = await bearer(org, secret).get("/api/v1/me")
    assert me.status_code == 200 and me.json()["id"] == alice.id
    used = (await alice.get("/api/v1/auth/tokens")).json()["tokens"][0]
    assert used["last_used_at"] is not None


async def test_read_scoped_token_can_read_but_not_write(org: Org, alice: Person) -> None:
    _, secret = await personal_token(alice, ["read"])
    reader = bearer(org, secret)
    assert (await reader.get("/api/v1/me")).status_code == 200
    assert (await reader.get("/api/v1/channels")).status_code == 200
    for response in (
        await reader.post("/api/v1/channels", json={"name": unique("ro")}),
        await reader.patch("/api/v1/me", json={"title": "changed"}),
        await reader.delete("/api/v1/auth/tokens/1"),
    ):
        assert response.status_code == 403, response.text
        assert problem_code(response) == "insufficient_scope"
    assert (await alice.get("/api/v1/me")).json()["title"] == ""


async def test_read_write_token_can_post_messages(org: Org, alice: Person) -> None:
    channel = await alice.create_channel()
    _, secret = await personal_token(alice, ["read", "write"])
    sent = await bearer(org, secret).post(
        f"/api/v1/channels/{channel['id']}/messages", json={"text": "from a script"}
    )
    assert sent.status_code == 201
    assert sent.json()["sender_id"] == alice.id


async def test_token_scopes_are_validated(alice: Person) -> None:
    for scopes in ([], ["root"], ["read", "everything"]):
        refused = await alice.post("/api/v1/auth/tokens", {"name": "bad", "scopes": scopes})
        assert refused.status_code == 422, scopes
    too_long = await alice.post(
        "/api/v1/auth/tokens", {"name": "bad", "scopes": ["read"], "expires_in_days": 0}
    )
    assert too_long.status_code == 422
    assert (await alice.get("/api/v1/auth/tokens")).json()["tokens"] == []


async def test_admin_scope_is_refused_when_the_user_is_not_an_admin(alice: Person) -> None:
    refused = await alice.post(
        "/api/v1/auth/tokens", {"name": "sneaky", "scopes": ["read", "write", "admin"]}
    )
    assert refused.status_code == 403
    assert problem_code(refused) == "admin_required"
    assert (await alice.get("/api/v1/auth/tokens")).json()["tokens"] == []


async def test_admin_endpoints_need_the_admin_scope_on_tokens(org: Org, admin: Person) -> None:
    _, plain = await personal_token(admin, ["read", "write"])
    _, powerful = await personal_token(admin, ["read", "write", "admin"])
    body = {"username": unique("made"), "password": PASSWORD}
    refused = await bearer(org, plain).post("/api/v1/users", json=body)
    assert refused.status_code == 403
    assert problem_code(refused) == "insufficient_scope"
    listing = await bearer(org, plain).get("/api/v1/invites")
    assert problem_code(listing) == "insufficient_scope"
    # The ordinary endpoints still work with the plain token.
    assert (await bearer(org, plain).get("/api/v1/users", params={"limit": 1})).status_code == 200

    created = await bearer(org, powerful).post("/api/v1/users", json=body)
    assert created.status_code == 201, created.text
    assert (await bearer(org, powerful).get("/api/v1/invites")).status_code == 200


async def test_admin_scope_grants_nothing_when_the_holder_is_no_longer_an_admin(
    org: Org, owner: Person
) -> None:
    promoted = await org.person("promoted", role="admin")
    _, secret = await personal_token(promoted, ["read", "write", "admin"])
    demoted = await owner.put(f"/api/v1/users/{promoted.id}/role", {"role": "member"})
    assert demoted.status_code == 200
    refused = await bearer(org, secret).post(
        "/api/v1/users", json={"username": unique("x"), "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert problem_code(refused) == "admin_required"


async def test_expired_token_is_refused(org: Org, alice: Person) -> None:
    token, secret = await personal_token(alice, ["read"], expires_in_days=1)
    assert token["expires_at"] is not None
    assert (await bearer(org, secret).get("/api/v1/me")).status_code == 200
    async with server_later(org, timedelta(days=1, minutes=1)) as later:
        expired = await bearer(org, secret, later.url).get("/api/v1/me")
        assert expired.status_code == 401
        assert problem_code(expired) == "token_expired"
        # A session created at the same time is still valid a day later.
        assert (await bearer(org, alice.token, later.url).get("/api/v1/me")).status_code == 200
    async with server_later(org, timedelta(hours=23)) as almost:
        assert (await bearer(org, secret, almost.url).get("/api/v1/me")).status_code == 200


async def test_expired_session_is_refused(org: Org, alice: Person) -> None:
    lifetime = timedelta(hours=org.server.settings.accounts.session_lifetime_hours)
    async with server_later(org, lifetime + timedelta(minutes=1)) as later:
        expired = await bearer(org, alice.token, later.url).get("/api/v1/me")
        assert expired.status_code == 401
        assert problem_code(expired) == "session_expired"


async def test_revoked_token_is_refused(org: Org, alice: Person, bob: Person) -> None:
    token, secret = await personal_token(alice, ["read", "write"])
    # Bob cannot revoke, or even learn of, Alice's token.
    assert (await bob.delete(f"/api/v1/auth/tokens/{token['id']}")).status_code == 404
    assert (await bearer(org, secret).get("/api/v1/me")).status_code == 200

    assert (await alice.delete(f"/api/v1/auth/tokens/{token['id']}")).status_code == 204
    refused = await bearer(org, secret).get("/api/v1/me")
    assert refused.status_code == 401
    assert problem_code(refused) == "invalid_token"
    assert (await alice.get("/api/v1/auth/tokens")).json()["tokens"] == []
    assert (await alice.delete(f"/api/v1/auth/tokens/{token['id']}")).status_code == 404


async def test_tokens_cannot_mint_more_tokens(org: Org, alice: Person) -> None:
    _, secret = await personal_token(alice, ["read", "write"])
    refused = await bearer(org, secret).post(
        "/api/v1/auth/tokens", json={"name": "child", "scopes": ["read"]}
    )
    assert refused.status_code == 403
    assert problem_code(refused) == "session_required"


async def test_tokens_stop_working_when_the_owner_is_deactivated(
    org: Org, alice: Person, admin: Person
) -> None:
    _, secret = await personal_token(alice, ["read"])
    assert (await admin.post(f"/api/v1/users/{alice.id}/deactivate")).status_code == 200
    refused = await bearer(org, secret).get("/api/v1/me")
    assert refused.status_code == 401
    assert problem_code(refused) == "account_deactivated"


# --- bots -------------------------------------------------------------------------------------
async def test_bot_token_posts_in_a_channel_the_bot_was_added_to(
    org: Org, admin: Person, alice: Person
) -> None:
    bot = await create_bot(admin)
    assert bot["is_bot"] is True
    assert bot["role"] == "member"
    assert bot["bot_owner_id"] == admin.id
    created = await admin.post(
        f"/api/v1/bots/{bot['id']}/tokens", {"name": "ci", "scopes": ["read", "write"]}
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("cyb_")
    assert created.json()["token"]["user_id"] == bot["id"]

    channel = await alice.create_channel(member_ids=[bot["id"]])
    client = bearer(org, secret)
    me = await client.get("/api/v1/me")
    assert me.json()["id"] == bot["id"] and me.json()["is_bot"] is True
    sent = await client.post(
        f"/api/v1/channels/{channel['id']}/messages", json={"text": "build passed"}
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["sender_id"] == bot["id"]
    history = (await alice.get(f"/api/v1/channels/{channel['id']}/messages")).json()
    assert [m["text"] for m in history["messages"]] == ["build passed"]


async def test_bot_cannot_post_where_it_was_not_added(
    org: Org, admin: Person, alice: Person
) -> None:
    bot = await create_bot(admin)
    client = bearer(org, await bot_token(admin, bot["id"], ["read", "write"]))
    channel = await alice.create_channel()
    refused = await client.post(
        f"/api/v1/channels/{channel['id']}/messages", json={"text": "uninvited"}
    )
    assert refused.status_code == 403
    assert problem_code(refused) == "not_a_member"


async def test_members_cannot_create_bots_or_bot_tokens(alice: Person, admin: Person) -> None:
    refused = await alice.post("/api/v1/bots", {"username": unique("bot")})
    assert refused.status_code == 403
    assert problem_code(refused) == "admin_required"
    bot = await create_bot(admin)
    token = await alice.post(f"/api/v1/bots/{bot['id']}/tokens", {"name": "x", "scopes": ["read"]})
    assert token.status_code == 403
    assert problem_code(token) == "admin_required"


async def test_bot_tokens_are_only_for_bots_and_never_admin(admin: Person, alice: Person) -> None:
    for_person = await admin.post(
        f"/api/v1/bots/{alice.id}/tokens", {"name": "x", "scopes": ["read"]}
    )
    assert for_person.status_code == 404
    bot = await create_bot(admin)
    elevated = await admin.post(
        f"/api/v1/bots/{bot['id']}/tokens", {"name": "x", "scopes": ["read", "admin"]}
    )
    assert elevated.status_code == 403
    assert problem_code(elevated) == "admin_required"


async def test_bots_cannot_mint_personal_tokens(org: Org, admin: Person) -> None:
    bot = await create_bot(admin)
    client = bearer(org, await bot_token(admin, bot["id"], ["read", "write"]))
    refused = await client.post("/api/v1/auth/tokens", json={"name": "x", "scopes": ["read"]})
    assert refused.status_code == 403
    assert problem_code(refused) == "session_required"


async def test_admin_revokes_a_bot_token_but_members_cannot(
    org: Org, admin: Person, alice: Person
) -> None:
    bot = await create_bot(admin)
    created = await admin.post(
        f"/api/v1/bots/{bot['id']}/tokens", {"name": "ci", "scopes": ["read"]}
    )
    token_id, secret = created.json()["token"]["id"], created.json()["secret"]
    assert (await alice.delete(f"/api/v1/auth/tokens/{token_id}")).status_code == 404
    assert (await bearer(org, secret).get("/api/v1/me")).status_code == 200
    assert (await admin.delete(f"/api/v1/auth/tokens/{token_id}")).status_code == 204
    refused = await bearer(org, secret).get("/api/v1/me")
    assert problem_code(refused) == "invalid_token"


async def test_bots_keep_their_role_and_have_no_password(owner: Person, admin: Person) -> None:
    bot = await create_bot(admin)
    role = await owner.put(f"/api/v1/users/{bot['id']}/role", {"role": "admin"})
    assert role.status_code == 422
    assert problem_code(role) == "bot_role_fixed"
    password = await admin.post(
        f"/api/v1/users/{bot['id']}/password", {"new_password": NEW_PASSWORD}
    )
    assert password.status_code == 422
    assert problem_code(password) == "bot_has_no_password"


async def test_bot_token_stops_working_when_the_bot_is_deactivated(org: Org, admin: Person) -> None:
    bot = await create_bot(admin)
    secret = await bot_token(admin, bot["id"], ["read"])
    assert (await admin.post(f"/api/v1/users/{bot['id']}/deactivate")).status_code == 200
    refused = await bearer(org, secret).get("/api/v1/me")
    assert problem_code(refused) == "account_deactivated"
