"""First run in the browser (setup page, invite link) and reconnecting across a server restart."""

from __future__ import annotations

import secrets
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Browser, expect

from tests.processes import ServerProcess
from tests.support import PASSWORD, DatabaseFactory
from tests.web.support import (
    Site,
    make_site,
    messages_with,
    open_channel,
    open_page,
    signed_in_page,
)

pytestmark = pytest.mark.timeout(120)


async def test_setup_page_then_invite_link_sign_up(
    browser: Browser, databases: DatabaseFactory, workdir: Path, built_client: Path
) -> None:
    server = ServerProcess(await databases.create(), workdir / f"setup-{secrets.token_hex(3)}")
    server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(built_client)
    server.start()
    owner = await open_page(browser, server.url)
    guest = await open_page(browser, server.url)
    try:
        token = server.setup_token()
        assert token, server.log()
        page = owner.page
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Create your organisation")).to_be_visible()
        await page.get_by_label("Setup token").fill(token)
        await page.get_by_label("Organisation name").fill("Acme")
        await page.get_by_label("Owner username").fill("boss")
        await page.get_by_label("Display name").fill("The Boss")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Create organisation").click()
        await expect(page.get_by_test_id("me")).to_have_text("The Boss")
        await expect(page).to_have_url(f"{server.url}/")

        # The owner creates a channel and an invite link; a colleague signs up with it.
        await page.get_by_role("button", name="New channel").click()
        dialog = page.get_by_role("dialog", name="New channel")
        await dialog.get_by_label("Name").fill("general")
        await dialog.get_by_role("button", name="Create").click()
        await expect(page.get_by_test_id("composer")).to_be_visible()
        await page.get_by_role("link", name="Administration").click()
        await page.get_by_role("button", name="Create invite link").click()
        link = await page.get_by_test_id("invite-link").input_value()
        assert link.startswith(f"{server.url}/invite/")

        await guest.page.goto(link)
        await guest.page.get_by_label("Username").fill("colleague")
        await guest.page.get_by_label("Display name").fill("Colleague")
        await guest.page.get_by_label("Password").fill(PASSWORD)
        await guest.page.get_by_role("button", name="Create account").click()
        await expect(guest.page.get_by_test_id("me")).to_have_text("Colleague")
        await expect(page.get_by_role("cell", name="Colleague @colleague")).to_be_visible()

        # The setup page does not offer setup twice.
        await guest.page.goto("/setup")
        await expect(guest.page.get_by_test_id("me")).to_have_text("Colleague")

        # The owner deactivates the colleague: their open client is signed out at once.
        await (
            page.get_by_role("row", name="Colleague @colleague")
            .get_by_role("button", name="Deactivate")
            .click()
        )
        await expect(page.get_by_role("row", name="Colleague @colleague")).to_contain_text(
            "deactivated"
        )
        await expect(guest.page.get_by_role("dialog", name="Sign in")).to_contain_text(
            "This account has been deactivated"
        )
        owner.assert_clean()
        guest.assert_clean()
    finally:
        await owner.context.close()
        await guest.context.close()
        server.stop()


async def test_reconnects_after_a_server_restart_losing_and_duplicating_nothing(
    browser: Browser, databases: DatabaseFactory, workdir: Path, built_client: Path
) -> None:
    server = ServerProcess(await databases.create(), workdir / f"restart-{secrets.token_hex(3)}")
    server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(built_client)
    server.start()
    try:
        site = await make_site(server)
        alice = await site.person("alice", "Alice")
        bob = await site.person("bob", "Bob")
        channel = await site.channel(alice, [bob])
        a = await signed_in_page(browser, site, alice)
        b = await signed_in_page(browser, site, bob)
        try:
            await open_channel(a.page, channel["id"])
            await open_channel(b.page, channel["id"])
            await a.page.get_by_test_id("composer").fill("before the restart")
            await a.page.get_by_test_id("composer").press("Enter")
            await expect(messages_with(b.page, "before the restart")).to_have_count(1)

            server.stop()
            banner = b.page.get_by_role("status").filter(has_text="Reconnecting")
            await expect(banner).to_be_visible()
            server.start()
            # Sent while Bob's client is still away (or reconnecting): resume delivers it.
            await site.send(alice, channel["id"], "while you were away")
            await expect(banner).to_have_count(0, timeout=45_000)
            await expect(messages_with(b.page, "while you were away")).to_have_count(1)

            await a.page.get_by_test_id("composer").fill("after the restart")
            await a.page.get_by_test_id("composer").press("Enter")
            await expect(messages_with(b.page, "after the restart")).to_have_count(1)
            for text in ("before the restart", "while you were away", "after the restart"):
                await expect(messages_with(b.page, text)).to_have_count(1)
                await expect(messages_with(a.page, text)).to_have_count(1)
            a.assert_clean()
            b.assert_clean()
        finally:
            await a.context.close()
            await b.context.close()
    finally:
        server.stop()


async def test_sign_in_with_a_second_factor(browser: Browser, site: Site) -> None:
    carol = await site.person("carol", "Carol")
    enrolment = await site.call("POST", "/auth/two-factor/enrolment", carol.token)
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await site.call(
        "POST", "/auth/two-factor/enrolment/confirm", carol.token, {"code": totp.now()}
    )
    # The code just used may not be replayed; a recovery code finishes the browser sign-in.
    recovery = confirmed["recovery_codes"][0]
    watched = await open_page(browser, site.url)
    try:
        page = watched.page
        await page.goto("/")
        await page.get_by_label("Username or email").fill(carol.username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        code = page.get_by_label("Authenticator code or recovery code")
        await expect(code).to_be_focused()
        await code.fill(recovery)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("me")).to_have_text("Carol")
        watched.assert_clean()
    finally:
        await watched.context.close()
