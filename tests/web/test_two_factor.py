"""Two-factor sign-in in the browser: enrolling from Preferences, the code step of signing in,
recovery codes that work once, and an organisation that requires a second factor of everyone
(enrolment is the only page until it is done; re-authentication prompts before sensitive actions).
Codes are computed here with pyotp from the key the page shows, as an authenticator app would."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.processes import ServerProcess
from tests.support import PASSWORD, DatabaseFactory
from tests.web.support import Site, make_site, open_page, signed_in_page, wait_until

pytestmark = pytest.mark.timeout(180)

# The re-authentication window of the strict organisation: short, so the test can outlast it.
REAUTH_MINUTES = 0.1


def code_after(secret: str, seconds: int) -> str:
    """The code the app shows ``seconds`` from now (the server accepts one step of drift, and
    refuses a step at or before one it already accepted)."""
    return str(pyotp.TOTP(secret).at(time.time() + seconds))


def wrong_code(secret: str) -> str:
    """A well-formed code the server cannot accept now (none of the steps within the drift)."""
    near = {code_after(secret, s) for s in (-60, -30, 0, 30, 60)}
    return next(
        c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in near
    )


async def sign_in_with_password(page: Page, username: str) -> None:
    """The first step of signing in, from the sign-in page."""
    await page.get_by_label("Username or email").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def reauthentication_lapses(page: Page) -> None:
    """Wait (bounded) until the page's session needs a fresh password or code, as the server
    reports it; the window is REAUTH_MINUTES from the last sign-in or re-authentication."""

    async def required() -> bool:
        status: Any = await page.evaluate("fetch('/api/v1/auth/two-factor').then((r) => r.json())")
        return status["reauthentication_required"] is True

    await wait_until(
        required, "the re-authentication window to pass", int(REAUTH_MINUTES * 60_000) + 15_000
    )


async def sign_out(page: Page) -> None:
    """The top bar's sign out; back on the sign-in page."""
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def enrol_on_page(page: Page) -> tuple[str, list[str]]:
    """Enrol with the QR page on screen: read the key, confirm a code, return key and codes."""
    qr = page.get_by_test_id("twofa-qr")
    await expect(qr).to_be_visible()
    src = await qr.get_attribute("src")
    assert src is not None and src.startswith("data:image/svg+xml"), src
    # The image rendered (a broken or CSP-blocked image has no natural width).
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    secret = (await page.get_by_test_id("twofa-secret").inner_text()).replace(" ", "")
    assert len(secret) == 32, secret
    uri = await page.get_by_label("Setup link").input_value()
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri, uri
    code_field = page.get_by_label("First code from the app")
    await expect(code_field).to_have_attribute("autocomplete", "one-time-code")
    await expect(code_field).to_have_attribute("inputmode", "numeric")
    await code_field.fill(wrong_code(secret))
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await code_field.fill(code_after(secret, 0))
    await page.get_by_role("button", name="Turn on").click()
    codes_list = page.get_by_test_id("recovery-codes").locator("li")
    await expect(codes_list).to_have_count(10)
    codes = [c.strip() for c in await codes_list.all_inner_texts()]
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes), codes
    download = page.get_by_role("link", name="Download codes")
    await expect(download).to_have_attribute("download", "courtyard-recovery-codes.txt")
    assert (await download.get_attribute("href") or "").startswith("blob:")
    await page.get_by_role("button", name="I have stored them").click()
    return secret, codes


async def test_enrol_in_preferences_then_sign_in_with_a_code_and_recovery_codes_once(
    browser: Browser, site: Site
) -> None:
    user = await site.person("tess", display_name="Tess Two")
    watched = await signed_in_page(browser, site, user)
    page = watched.page
    try:
        await page.get_by_role("link", name="Preferences").click()
        section = page.get_by_test_id("two-factor")
        await expect(section.get_by_test_id("twofa-status")).to_contain_text("Off")
        await section.get_by_role("button", name="Set up two-factor authentication").click()
        secret, codes = await enrol_on_page(page)
        await expect(section.get_by_test_id("twofa-status")).to_have_text(
            "On. Recovery codes left: 10."
        )

        # Signing in now takes the code too; a wrong code is explained and refused.
        await sign_out(page)
        await sign_in_with_password(page, user.username)
        await expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
        await expect(page.get_by_test_id("me")).to_have_count(0)
        code_field = page.get_by_label("Authenticator code or recovery code")
        await expect(code_field).to_have_attribute("autocomplete", "one-time-code")
        await expect(code_field).to_have_attribute("inputmode", "numeric")
        await code_field.fill(wrong_code(secret))
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
        await expect(page.get_by_test_id("me")).to_have_count(0)
        # The next step's code: the one used to enrol cannot be replayed.
        await code_field.fill(code_after(secret, 30))
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_test_id("me")).to_have_text("Tess Two")

        # A recovery code signs in once.
        await sign_out(page)
        await sign_in_with_password(page, user.username)
        await page.get_by_role("button", name="Use a recovery code instead").click()
        await page.get_by_label("Recovery code").fill(codes[0])
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_test_id("me")).to_have_text("Tess Two")
        await sign_out(page)
        await sign_in_with_password(page, user.username)
        await page.get_by_role("button", name="Use a recovery code instead").click()
        await page.get_by_label("Recovery code").fill(codes[0])
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
        await page.get_by_label("Recovery code").fill(codes[1].upper())
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_test_id("me")).to_have_text("Tess Two")
        await page.get_by_role("link", name="Preferences").click()
        await expect(page.get_by_test_id("twofa-status")).to_have_text(
            "On. Recovery codes left: 8."
        )

        # New recovery codes replace the old ones (just signed in: no re-authentication asked).
        await page.get_by_role("button", name="New recovery codes").click()
        fresh = page.get_by_test_id("recovery-codes").locator("li")
        await expect(fresh).to_have_count(10)
        assert not set(await fresh.all_inner_texts()) & set(codes)
        await page.get_by_role("button", name="I have stored them").click()
        await expect(page.get_by_test_id("twofa-status")).to_have_text(
            "On. Recovery codes left: 10."
        )

        # Turning it off: signing in is one step again.
        await page.get_by_role("button", name="Turn off two-factor authentication").click()
        await expect(section.get_by_role("status")).to_have_text(
            "Two-factor authentication is off."
        )
        await expect(page.get_by_test_id("twofa-status")).to_contain_text("Off")
        await sign_out(page)
        await sign_in_with_password(page, user.username)
        await expect(page.get_by_test_id("me")).to_have_text("Tess Two")
        watched.assert_clean()
    finally:
        await watched.context.close()


async def test_the_code_step_in_chinese(browser: Browser, site: Site) -> None:
    user = await site.person("zhou")
    secret = await enrol_over_api(site.url, user.token)
    watched = await open_page(browser, site.url, locale="zh-CN")
    page = watched.page
    try:
        await page.goto("/")
        await page.get_by_label("用户名或邮箱").fill(user.username)
        await page.get_by_label("密码").fill(PASSWORD)
        await page.get_by_role("button", name="登录").click()
        await expect(page.get_by_role("heading", name="两步登录")).to_be_visible()
        await page.get_by_label("验证器代码或恢复码").fill(code_after(secret, 30))
        await page.get_by_role("button", name="登录", exact=True).click()
        await expect(page.get_by_test_id("me")).to_have_text(user.display_name)
        watched.assert_clean()
    finally:
        await watched.context.close()


async def test_too_many_wrong_codes_say_how_long_to_wait(browser: Browser, site: Site) -> None:
    user = await site.person("locked")
    secret = await enrol_over_api(site.url, user.token)
    watched = await open_page(browser, site.url)
    page = watched.page
    try:
        await page.goto("/")
        await sign_in_with_password(page, user.username)
        code_field = page.get_by_label("Authenticator code or recovery code")
        alert = page.get_by_role("alert")
        # Five wrong codes are allowed (second_factor_attempts); each answer clears the field.
        for _ in range(8):
            await code_field.fill(wrong_code(secret))
            await page.get_by_role("button", name="Sign in", exact=True).click()
            await expect(code_field).to_have_value("")
            if "Too many" in await alert.inner_text():
                break
        await expect(alert).to_have_text(
            re.compile(r"^Too many wrong codes\. Try again in \d+ seconds\.$")
        )
        # Locked: even the right code is refused now, with the same explanation.
        await code_field.fill(code_after(secret, 30))
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(code_field).to_have_value("")
        await expect(alert).to_contain_text("Too many wrong codes")
        await expect(page.get_by_test_id("me")).to_have_count(0)
        watched.assert_clean()
    finally:
        await watched.context.close()


async def enrol_over_api(url: str, token: str) -> str:
    """Turn a second factor on for a bearer session (as an API client would); its key."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=15, headers=headers) as client:
        started = await client.post("/api/v1/auth/two-factor/enrolment")
        assert started.status_code == 201, started.text
        secret: str = started.json()["secret"]
        confirmed = await client.post(
            "/api/v1/auth/two-factor/enrolment/confirm", json={"code": code_after(secret, 0)}
        )
        assert confirmed.status_code == 200, confirmed.text
    return secret


@pytest.fixture(scope="module")
async def strict_site(
    databases: DatabaseFactory, workdir: Path, built_client: Path
) -> AsyncIterator[Site]:
    """An organisation whose policy requires a second factor of everyone; its owner enrolled."""
    server = ServerProcess(await databases.create(), workdir / f"web-2fa-{secrets.token_hex(3)}")
    server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(built_client)
    server.extra_env["COURTYARD_SECURITY__TWO_FACTOR"] = "everyone"
    server.extra_env["COURTYARD_SECURITY__REAUTHENTICATION_MINUTES"] = str(REAUTH_MINUTES)
    server.start()
    try:
        site = await make_site(server)
        await enrol_over_api(site.url, site.owner.token)
        yield site
    finally:
        server.stop()


async def test_required_enrolment_is_the_only_page_until_done(
    browser: Browser, strict_site: Site
) -> None:
    site = strict_site
    user = await site.person("newbie", display_name="New Bie")
    watched = await open_page(browser, site.url)
    page = watched.page
    try:
        await page.goto("/")
        await sign_in_with_password(page, user.username)
        await expect(
            page.get_by_role("heading", name="Set up two-factor authentication")
        ).to_be_visible()
        await expect(page.get_by_text("Your organisation requires a second factor")).to_be_visible()
        await expect(page.get_by_test_id("twofa-qr")).to_be_visible()
        # Nothing else: no conversations, no top bar, other addresses lead back here.
        await expect(page.get_by_test_id("me")).to_have_count(0)
        await expect(page.locator(".sidebar")).to_have_count(0)
        await page.goto("/settings")
        await expect(
            page.get_by_role("heading", name="Set up two-factor authentication")
        ).to_be_visible()
        await expect(page.get_by_test_id("me")).to_have_count(0)
        status: Any = await page.evaluate(
            "fetch('/api/v1/state').then(async r => [r.status, (await r.json()).code])"
        )
        assert status == [403, "two_factor_enrolment_required"], status

        secret, _codes = await enrol_on_page(page)
        await expect(page.get_by_test_id("me")).to_have_text("New Bie")
        await page.get_by_role("link", name="Preferences").click()
        await expect(page.get_by_test_id("twofa-status")).to_have_text(
            "On. Recovery codes left: 10."
        )
        await expect(
            page.get_by_text("Your organisation requires two-factor authentication.")
        ).to_be_visible()
        # Required: it cannot be turned off here.
        await expect(
            page.get_by_role("button", name="Turn off two-factor authentication")
        ).to_have_count(0)

        # Once the re-authentication window has passed (the server says so), a sensitive
        # action asks for the password, and is carried out once it is given.
        await reauthentication_lapses(page)
        await page.get_by_role("button", name="New recovery codes").click()
        dialog = page.get_by_role("dialog", name="Confirm it is you")
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("Password").fill("not the password")
        await dialog.get_by_role("button", name="Confirm").click()
        await expect(dialog.get_by_role("alert")).to_have_text("That password is not right.")
        await expect(page.get_by_test_id("recovery-codes")).to_have_count(0)
        await dialog.get_by_label("Password").fill(PASSWORD)
        await dialog.get_by_role("button", name="Confirm").click()
        await expect(dialog).to_have_count(0)
        regenerated = page.get_by_test_id("recovery-codes").locator("li")
        await expect(regenerated).to_have_count(10)
        fresh_codes = [c.strip() for c in await regenerated.all_inner_texts()]
        await page.get_by_role("button", name="I have stored them").click()

        # Later again, a recovery code confirms it is you as well (once).
        await reauthentication_lapses(page)
        await page.get_by_role("button", name="New recovery codes").click()
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Use a code instead").click()
        await expect(dialog.get_by_label("Authenticator code or recovery code")).to_be_visible()
        await dialog.get_by_role("button", name="Use a recovery code instead").click()
        await dialog.get_by_label("Recovery code").fill(fresh_codes[0])
        await dialog.get_by_role("button", name="Confirm").click()
        await expect(dialog).to_have_count(0)
        await expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
        await page.get_by_role("button", name="I have stored them").click()

        # The next sign-in takes a code, straight into the app.
        await sign_out(page)
        await sign_in_with_password(page, user.username)
        await page.get_by_label("Authenticator code or recovery code").fill(code_after(secret, 30))
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_test_id("me")).to_have_text("New Bie")
        watched.assert_clean()
    finally:
        await watched.context.close()


async def test_an_administrator_resets_a_lost_second_factor_and_changes_a_role(
    browser: Browser, site: Site
) -> None:
    lost = await site.person("lost", "Lost Device")
    started = await site.call("POST", "/auth/two-factor/enrolment", lost.token, expect_status=201)
    await site.call(
        "POST",
        "/auth/two-factor/enrolment/confirm",
        lost.token,
        {"code": code_after(started["secret"], 0)},
    )
    watched = await signed_in_page(browser, site, site.owner, "/admin")
    page = watched.page
    try:
        reset = page.get_by_role("button", name=f"Reset two-factor @{lost.username}")
        await reset.click()
        await expect(page.get_by_role("status")).to_contain_text(f"@{lost.username}")
        # The password alone signs them in again; they enrol anew from there.
        async with httpx.AsyncClient(base_url=site.url, timeout=15) as client:
            again = await client.post(
                "/api/v1/auth/sign-in",
                json={"login": lost.username, "password": PASSWORD, "session_type": "token"},
            )
        assert again.status_code == 200, again.text
        assert again.json()["second_factor_required"] is False
        # Nothing left to reset: the refusal is shown, not swallowed.
        await reset.click()
        await expect(page.get_by_role("alert")).to_contain_text("no second factor")

        await page.get_by_label(f"Role {lost.username}").select_option("admin")
        deadline = time.monotonic() + 10
        while True:
            profile = await site.call("GET", f"/users/{lost.id}", site.owner.token)
            if profile["role"] == "admin" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert profile["role"] == "admin"
    finally:
        await watched.context.close()


COUNT_SOCKETS = """
window.__socketsOpened = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) { super(...args); window.__socketsOpened += 1; }
};
"""


async def test_a_socket_refused_for_enrolment_switches_to_the_enrolment_page(
    browser: Browser, databases: DatabaseFactory, workdir: Path, built_client: Path
) -> None:
    """The organisation starts requiring a second factor while someone is signed in: after the
    restart their event socket is refused, and the client shows the enrolment page at once
    instead of retrying the socket."""
    server = ServerProcess(await databases.create(), workdir / f"web-2fa-{secrets.token_hex(3)}")
    server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(built_client)
    server.start()
    try:
        site = await make_site(server)
        user = await site.person("latecomer", display_name="Late Comer")
        watched = await open_page(browser, site.url)
        page = watched.page
        await page.add_init_script(COUNT_SOCKETS)
        try:
            await page.goto("/")
            await sign_in_with_password(page, user.username)
            await expect(page.get_by_test_id("me")).to_have_text("Late Comer")
            await expect(page.locator(".connection-banner")).to_have_count(0)
            assert await page.evaluate("window.__socketsOpened") == 1

            server.stop()
            await expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
            server.extra_env["COURTYARD_SECURITY__TWO_FACTOR"] = "everyone"
            server.start()
            await expect(
                page.get_by_role("heading", name="Set up two-factor authentication")
            ).to_be_visible(timeout=45_000)
            await expect(page.get_by_test_id("me")).to_have_count(0)
            attempts = await page.evaluate("window.__socketsOpened")
            # On the enrolment page no socket is tried again, however long it takes.
            secret, _codes = await enrol_on_page(page)
            assert secret
            await expect(page.get_by_test_id("me")).to_have_text("Late Comer")
            # Enrolled: exactly one new socket, for the app.
            assert await page.evaluate("window.__socketsOpened") == attempts + 1
            await expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_have_count(
                0
            )
            watched.assert_clean()
        finally:
            await watched.context.close()
    finally:
        server.stop()
