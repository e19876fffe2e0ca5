"""Receipts, typing, presence, @mention autocomplete, files, search, session expiry, phone width."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.support import PASSWORD, unique
from tests.web.support import Site, messages_with, open_channel, signed_in_page

pytestmark = pytest.mark.timeout(90)


async def test_receipts_typing_and_presence(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    channel = await site.channel(alice, [bob])
    dm = await site.call("POST", "/conversations", alice.token, {"user_ids": [bob.id]})
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        dot = a.page.locator(f'.sidebar a[data-channel-id="{dm["id"]}"] .presence')
        await expect(dot).to_have_class("presence presence-offline")
        b = await signed_in_page(browser, site, bob)
        try:
            await expect(dot).to_have_class("presence presence-online")
            await open_channel(b.page, channel["id"])
            await b.page.get_by_test_id("composer").press_sequentially("thinking")
            await expect(a.page.locator(".typing")).to_have_text("Bob is typing…")
            composer = a.page.get_by_test_id("composer")
            await composer.fill("did you read this?")
            await composer.press("Enter")
            await expect(messages_with(b.page, "did you read this?")).to_have_count(1)
            await expect(
                messages_with(a.page, "did you read this?").locator(".seen-by")
            ).to_have_text("Seen by Bob")
            a.assert_clean()
            b.assert_clean()
        finally:
            await b.context.close()
    finally:
        await a.context.close()


async def test_mention_autocomplete_file_attachment_and_search(
    browser: Browser, site: Site
) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob Mentioned")
    channel = await site.channel(alice, [bob])
    a = await signed_in_page(browser, site, alice)
    b = await signed_in_page(browser, site, bob)
    word = unique("zebra").replace("-", "")
    try:
        await open_channel(a.page, channel["id"])
        await open_channel(b.page, channel["id"])
        composer = a.page.get_by_test_id("composer")
        await composer.press_sequentially(f"@{bob.username[:-1]}")
        option = a.page.get_by_role("option", name=f"Bob Mentioned @{bob.username}")
        await expect(option).to_be_visible()
        await composer.press("Enter")
        await expect(composer).to_have_value(f"@{bob.username} ")
        await composer.press_sequentially(":tad")
        await expect(a.page.get_by_role("option", name="🎉 :tada:")).to_be_visible()
        await composer.press("Enter")
        await expect(composer).to_have_value(f"@{bob.username} 🎉 ")
        await composer.press_sequentially(f"see the {word} notes")
        await composer.press("Enter")
        arrived = messages_with(b.page, word)
        await expect(arrived).to_have_count(1)
        await expect(arrived.locator(".mention-me")).to_have_text(f"@{bob.username}")

        # A file attached from the composer (Enter right away: the send waits for the upload),
        # shown live to both, with a download link that works.
        await composer.fill(f"{word} file attached")
        await a.page.get_by_label("Attach files").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello notes\n"}]
        )
        await composer.press("Enter")
        sent = messages_with(a.page, "file attached")
        await expect(sent.get_by_role("link", name="notes.txt")).to_be_visible()
        attached = messages_with(b.page, "file attached")
        link = attached.get_by_role("link", name="notes.txt")
        await expect(link).to_be_visible()
        href = await link.get_attribute("href")
        assert href is not None
        download = await b.page.request.get(href)
        assert download.status == 200 and await download.body() == b"hello notes\n"

        search = b.page.get_by_role("search").get_by_role("searchbox")
        await search.fill(word)
        await search.press("Enter")
        result = b.page.locator(".search-results li", has_text="see the")
        await expect(result).to_have_count(1)
        await expect(result.locator("mark")).to_contain_text(word)
        await result.get_by_role("link").click()
        await expect(b.page.locator(".message.highlighted")).to_contain_text(word)
        a.assert_clean()
        b.assert_clean()
    finally:
        await a.context.close()
        await b.context.close()


async def test_session_expiry_keeps_the_draft(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    channel = await site.channel(alice, [])
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        await a.page.get_by_test_id("composer").fill("unsent words")
        # Every other session of Alice ends (as after a password change elsewhere).
        await site.call("POST", "/auth/sessions/revoke-others", alice.token)
        dialog = a.page.get_by_role("dialog", name="Sign in")
        await expect(dialog).to_contain_text("Your session has expired")
        await dialog.get_by_label("Username or email").fill(alice.username)
        await dialog.get_by_label("Password").fill(PASSWORD)
        await dialog.get_by_role("button", name="Sign in").click()
        await expect(dialog).to_have_count(0)
        composer = a.page.get_by_test_id("composer")
        await expect(composer).to_have_value("unsent words")
        await composer.press("Enter")
        await expect(messages_with(a.page, "unsent words")).to_have_count(1)
        a.assert_clean()
    finally:
        await a.context.close()


async def test_phone_width_layout(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    channel = await site.channel(alice, [])
    a = await signed_in_page(
        browser, site, alice, viewport={"width": 360, "height": 740}, has_touch=True
    )
    try:
        page = a.page
        sidebar = page.get_by_role("navigation", name="Conversations")
        link = sidebar.locator(f'a[data-channel-id="{channel["id"]}"]')
        await page.get_by_role("button", name="Conversations").click()
        await link.click()
        await expect(page.get_by_test_id("composer")).to_be_visible()
        await expect(link).not_to_be_in_viewport()
        composer = page.get_by_test_id("composer")
        await composer.fill("from a phone")
        await composer.press("Enter")
        await expect(messages_with(page, "from a phone")).to_be_in_viewport()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"horizontal scrolling at 360 px: {width}"
        a.assert_clean()
    finally:
        await a.context.close()
